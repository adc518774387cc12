package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ferrydb/ferry/model"
)

// The way back after a cutover: ferry cutover --reverse records where the
// reverse flow starts in <flow>.reverse beside the forward flow's state, a
// file of its own so that it outlives the forward flow's store (ferry drop
// of the forward flow leaves it) and is read without taking its lock.

// ReverseStart is what ferry cutover --reverse recorded for the reverse
// flow of a forward flow.
type ReverseStart struct {
	// Forward and Reverse name the two flows.
	Forward string `json:"forward"`
	Reverse string `json:"reverse"`
	// Source and Destination are the forward flow's, redacted.
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Tables is the forward flow's --tables patterns.
	Tables []string `json:"tables,omitempty"`
	// At is when the cutover was requested.
	At time.Time `json:"at"`
	// Start is the forward destination's position at the cutover, where
	// the reverse flow streams from; ForwardEnd the forward source's
	// position the cutover drained to.
	Start      model.Position `json:"start"`
	ForwardEnd model.Position `json:"forward_end"`
	// Checked is set once the reverse flow found no change to the
	// selected tables at the forward source after ForwardEnd (its first
	// start); a resumed reverse flow does not look again, since its own
	// writes are there by then.
	Checked bool `json:"checked,omitempty"`
}

// ReversePath is the file recording the reverse start of forward flow.
func ReversePath(dir, flow string) string { return Path(dir, flow) + ".reverse" }

// WriteReverse replaces the record of the reverse start, whole.
func WriteReverse(dir string, r ReverseStart) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("reverse start: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("reverse start: %w", err)
	}
	path := ReversePath(dir, r.Forward)
	tmp, err := writeTemp(path, b)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp) //nolint:errcheck // the rename error is the one to report
		return fmt.Errorf("reverse start %s: %w", path, err)
	}
	return nil
}

// ReadReverse reads the record of the reverse start of forward flow; false
// when the flow was not cut over with --reverse.
func ReadReverse(dir, flow string) (ReverseStart, bool, error) {
	path := ReversePath(dir, flow)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ReverseStart{}, false, nil
	}
	if err != nil {
		return ReverseStart{}, false, fmt.Errorf("reverse start %s: %w", path, err)
	}
	var r ReverseStart
	if err := json.Unmarshal(b, &r); err != nil {
		return ReverseStart{}, false, fmt.Errorf("reverse start %s is corrupt (%v): run ferry cutover --reverse again", path, err)
	}
	return r, true, nil
}
