package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A cutover request travels to the process that runs a flow through a file
// beside its state, <flow>.cutover, holding the request's time; that
// process answers in <flow>.cutover-report. Files, not the SQLite store: the
// running process holds the flow's lock, and the requester must not wait
// for it.

// CutoverRequestPath is the file that asks the flow's process to cut over.
func CutoverRequestPath(dir, flow string) string { return Path(dir, flow) + ".cutover" }

// CutoverReportPath is the file where the flow's process reports a cutover.
func CutoverReportPath(dir, flow string) string { return Path(dir, flow) + ".cutover-report" }

// Exists tells whether flow has state under dir.
func Exists(dir, flow string) (bool, error) {
	_, err := os.Stat(Path(dir, flow))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state %s: %w", Path(dir, flow), err)
	}
	return true, nil
}

// RequestCutover asks for a cutover of flow at time at, unless a request is
// already pending: then that one stands and its time is returned, so two
// requesters wait for the same cutover.
func RequestCutover(dir, flow string, at time.Time) (time.Time, error) {
	path := CutoverRequestPath(dir, flow)
	tmp, err := writeTemp(path, []byte(at.UTC().Format(time.RFC3339Nano)+"\n"))
	if err != nil {
		return time.Time{}, err
	}
	defer os.Remove(tmp) //nolint:errcheck // gone once linked, or never made
	// A link fails when the request exists: the first request wins whole.
	if err := os.Link(tmp, path); err == nil {
		return at, nil
	} else if !errors.Is(err, os.ErrExist) {
		return time.Time{}, fmt.Errorf("cutover request %s: %w", path, err)
	}
	pending, ok, err := PendingCutover(dir, flow)
	if err != nil || !ok {
		if err == nil {
			err = errors.New("the pending request vanished; run ferry cutover again")
		}
		return time.Time{}, fmt.Errorf("cutover request %s: %w", path, err)
	}
	return pending, nil
}

// PendingCutover returns the time of the pending cutover request of flow.
func PendingCutover(dir, flow string) (time.Time, bool, error) {
	path := CutoverRequestPath(dir, flow)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("cutover request %s: %w", path, err)
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("cutover request %s holds %q, not a time: remove it and run ferry cutover again", path, b)
	}
	return at, true, nil
}

// ClearCutover removes the request of flow once it is answered (or stale).
func ClearCutover(dir, flow string) error {
	if err := os.Remove(CutoverRequestPath(dir, flow)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cutover request: %w", err)
	}
	return nil
}

// WriteCutoverReport replaces the cutover report of flow, whole: a reader
// never sees half of it.
func WriteCutoverReport(dir, flow string, report []byte) error {
	path := CutoverReportPath(dir, flow)
	tmp, err := writeTemp(path, report)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp) //nolint:errcheck // the rename error is the one to report
		return fmt.Errorf("cutover report %s: %w", path, err)
	}
	return nil
}

// CutoverReport reads the cutover report of flow; false when there is none.
func CutoverReport(dir, flow string) ([]byte, bool, error) {
	b, err := os.ReadFile(CutoverReportPath(dir, flow))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cutover report: %w", err)
	}
	return b, true, nil
}

// writeTemp writes data, synced, to a new file beside path.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".cutover-*")
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name()) //nolint:errcheck // the write error is the one to report
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return f.Name(), nil
}
