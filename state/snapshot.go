package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A request to copy tables of a running flow again (ferry snapshot)
// travels like a cutover's, through a file beside the flow's state:
// <flow>.snapshot.<nanoseconds>, one source table per line. The process
// that runs the flow takes it (removes it) once the engine accepted it, or
// answers a refusal in the same name with ".refused" appended. A request
// left while no process runs the flow is taken by the next one.

// SnapshotRequest is one pending request.
type SnapshotRequest struct {
	Path   string
	Tables []string
}

func snapshotPrefix(dir, flow string) string { return Path(dir, flow) + ".snapshot." }

// RequestSnapshot leaves a request to copy tables of flow again, and
// returns it.
func RequestSnapshot(dir, flow string, tables []string) (SnapshotRequest, error) {
	path := snapshotPrefix(dir, flow) + strconv.FormatInt(time.Now().UnixNano(), 10)
	tmp, err := writeTemp(path, []byte(strings.Join(tables, "\n")+"\n"))
	if err != nil {
		return SnapshotRequest{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp) //nolint:errcheck // already failing
		return SnapshotRequest{}, fmt.Errorf("snapshot request %s: %w", path, err)
	}
	return SnapshotRequest{Path: path, Tables: tables}, nil
}

// PendingSnapshots lists the flow's requests not yet taken, oldest first.
func PendingSnapshots(dir, flow string) ([]SnapshotRequest, error) {
	prefix := snapshotPrefix(dir, flow)
	matches, err := filepath.Glob(globEscape(prefix) + "*")
	if err != nil {
		return nil, fmt.Errorf("snapshot requests: %w", err)
	}
	var out []SnapshotRequest
	for _, m := range matches {
		n, err := strconv.ParseInt(strings.TrimPrefix(m, prefix), 10, 64)
		if err != nil || n <= 0 {
			continue // a .refused answer, or not ours
		}
		b, err := os.ReadFile(m)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot request %s: %w", m, err)
		}
		out = append(out, SnapshotRequest{Path: m, Tables: strings.Fields(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// AnswerSnapshot takes a request: it is removed, and a refusal is written
// where the requester looks for it.
func AnswerSnapshot(r SnapshotRequest, refused error) error {
	if refused != nil {
		if err := os.WriteFile(r.Path+".refused", []byte(refused.Error()+"\n"), 0o600); err != nil {
			return fmt.Errorf("snapshot request %s: %w", r.Path, err)
		}
	}
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot request %s: %w", r.Path, err)
	}
	return nil
}

// SnapshotAnswer tells whether a request was taken, and why it was refused
// if it was; the refusal is read once and removed.
func SnapshotAnswer(r SnapshotRequest) (taken bool, refusal string, err error) {
	if _, err := os.Stat(r.Path); err == nil {
		return false, "", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, "", fmt.Errorf("snapshot request %s: %w", r.Path, err)
	}
	b, err := os.ReadFile(r.Path + ".refused")
	if errors.Is(err, os.ErrNotExist) {
		return true, "", nil
	}
	if err != nil {
		return true, "", fmt.Errorf("snapshot request %s: %w", r.Path, err)
	}
	os.Remove(r.Path + ".refused") //nolint:errcheck // read already
	return true, strings.TrimSpace(string(b)), nil
}

// removeSnapshotRequests removes every request of the flow at path (its
// state file) and their answers.
func removeSnapshotRequests(path string) error {
	matches, err := filepath.Glob(globEscape(path+".snapshot.") + "*")
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// globEscape quotes the characters filepath.Glob would read as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
