package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// checkpointRecord is one checkpoint sidecar,
// <dir>/.ferry/<flow>/<key>.json. For a checkpoint written with rows it also
// names the part file and its length once those rows were durable: the part
// file's committed content.
type checkpointRecord struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Part   string `json:"part,omitempty"`
	Length int64  `json:"length,omitempty"`
	// Changes is, for a checkpoint written with change files, the last
	// change batch they commit (changes.go).
	Changes int64 `json:"changes,omitempty"`
}

// replaceJournal is ReplaceCheckpoints' intent, written before it touches any
// checkpoint and replayed by LoadCheckpoints if a crash interrupted it.
type replaceJournal struct {
	Prefix  string             `json:"prefix"`
	Records []checkpointRecord `json:"records"`
}

func (c *Conn) stateDir() string { return filepath.Join(c.dir, stateDir) }

func (c *Conn) flowDir(flow string) string {
	return filepath.Join(c.stateDir(), escapeName(flow, false))
}

func checkpointFile(key string) string { return escapeName(key, false) + checkpointExt }

func checkFlow(flow string) error {
	if flow == "" {
		return errors.New("empty flow name")
	}
	return nil
}

// ensureFlowDir creates the flow's checkpoint directory durably.
func (c *Conn) ensureFlowDir(flow string) error {
	c.mu.Lock()
	ok := c.flowDirs[flow]
	c.mu.Unlock()
	if ok {
		return nil
	}
	dir := c.flowDir(flow)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("create checkpoint directory: %w", err)
	}
	if err := syncDir(c.stateDir()); err != nil {
		return err
	}
	if err := syncDir(c.dir); err != nil {
		return err
	}
	c.mu.Lock()
	c.flowDirs[flow] = true
	c.mu.Unlock()
	return nil
}

// writeCheckpoint atomically replaces one checkpoint sidecar.
func (c *Conn) writeCheckpoint(flow string, rec checkpointRecord) error {
	if err := c.ensureFlowDir(flow); err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.flowDir(flow), checkpointFile(rec.Key)), b)
}

type checkpointEntry struct {
	rec  checkpointRecord
	file string
}

// readCheckpointDir reads the checkpoint sidecars of one flow directory, by
// key.
func readCheckpointDir(dir string) (map[string]checkpointEntry, error) {
	names, err := fileNames(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]checkpointEntry, len(names))
	for _, name := range names {
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, checkpointExt) {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
		}
		var rec checkpointRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		out[rec.Key] = checkpointEntry{rec: rec, file: path}
	}
	return out, nil
}

// otherFlowParts maps the part files named by the checkpoints of every flow
// but flow to that flow: those are theirs and left alone.
func (c *Conn) otherFlowParts(flow string) (map[string]string, error) {
	entries, err := os.ReadDir(c.stateDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", c.stateDir(), err)
	}
	own := escapeName(flow, false)
	out := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == own {
			continue
		}
		recs, err := readCheckpointDir(filepath.Join(c.stateDir(), e.Name()))
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.rec.Part != "" {
				out[r.rec.Part] = unescapeName(e.Name())
			}
		}
	}
	return out, nil
}

// LoadCheckpoints returns the flow's checkpoints and rolls the directory back
// to them: it finishes an interrupted ReplaceCheckpoints or FinishTable, cuts
// every part file the flow has a checkpoint for back to the length recorded
// with it (rows written after the last checkpoint go), and deletes part files
// no flow has a checkpoint for (rows of a partition that never reached its
// first checkpoint). It must run before any writer of the flow does.
func (c *Conn) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	if err := checkFlow(flow); err != nil {
		return nil, err
	}
	c.ckMu.Lock()
	defer c.ckMu.Unlock()
	out, err := c.load(ctx, flow)
	if err != nil {
		return nil, fmt.Errorf("load checkpoints of flow %q from %s: %w", flow, c.dir, err)
	}
	return out, nil
}

func (c *Conn) load(ctx context.Context, flow string) (map[string]string, error) {
	dir := c.flowDir(flow)
	if err := c.replayJournal(dir); err != nil {
		return nil, err
	}
	if err := removeTempFiles(dir); err != nil {
		return nil, err
	}
	if err := removeTempFiles(c.dir); err != nil {
		return nil, err
	}
	names, err := fileNames(c.dir)
	if err != nil {
		return nil, err
	}
	if err := c.completeFinishes(names); err != nil {
		return nil, err
	}
	recs, err := readCheckpointDir(dir)
	if err != nil {
		return nil, err
	}
	others, err := c.otherFlowParts(flow)
	if err != nil {
		return nil, err
	}
	var changes int64
	for _, e := range recs {
		changes = max(changes, e.rec.Changes)
	}
	if c.changes {
		if err := c.cutChanges(changes); err != nil {
			return nil, err
		}
	}
	committed := map[string]int64{}
	for _, e := range recs {
		if e.rec.Part != "" {
			if l, ok := committed[e.rec.Part]; !ok || e.rec.Length > l {
				committed[e.rec.Part] = e.rec.Length
			}
		}
	}
	// The directory may have changed since the listing above (finished
	// parts were removed).
	if names, err = fileNames(c.dir); err != nil {
		return nil, err
	}
	removed := false
	for _, p := range listParts(names, "") {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := filepath.Join(c.dir, p.name)
		if length, ok := committed[p.name]; ok {
			if err := truncatePart(path, length); err != nil {
				return nil, err
			}
			continue
		}
		if _, ok := others[p.name]; ok {
			continue
		}
		if err := removeIfExists(path); err != nil {
			return nil, err
		}
		removed = true
	}
	if removed {
		if err := syncDir(c.dir); err != nil {
			return nil, err
		}
	}
	c.resetParts()
	c.mu.Lock()
	c.foreign = others
	c.mu.Unlock()
	out := make(map[string]string, len(recs))
	for k, e := range recs {
		out[k] = e.rec.Value
	}
	return out, nil
}

// truncatePart cuts a part file back to its committed length.
func truncatePart(path string, length int64) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	switch {
	case fi.Size() < length:
		return fmt.Errorf("%s has %d bytes, but its checkpoint covers %d: rows the checkpoint covers are missing", path, fi.Size(), length)
	case fi.Size() > length:
		if err := f.Truncate(length); err != nil {
			return fmt.Errorf("truncate %s to its checkpoint at %d bytes: %w", path, length, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	return nil
}

func (c *Conn) resetParts() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts = map[string]*partState{}
}

// ReplaceCheckpoints deletes the flow's checkpoints whose key starts with
// prefix and stores values, atomically: a journal of the change is made
// durable first and replayed by LoadCheckpoints after a crash. A replaced
// key keeps the part file its old checkpoint named, since those rows are
// still in it.
func (c *Conn) ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error {
	if err := checkFlow(flow); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.ckMu.Lock()
	defer c.ckMu.Unlock()
	if err := c.replace(flow, prefix, values); err != nil {
		return fmt.Errorf("replace checkpoints %q of flow %q in %s: %w", prefix, flow, c.dir, err)
	}
	return nil
}

func (c *Conn) replace(flow, prefix string, values map[string]string) error {
	dir := c.flowDir(flow)
	if err := c.replayJournal(dir); err != nil {
		return err
	}
	cur, err := readCheckpointDir(dir)
	if err != nil {
		return err
	}
	j := replaceJournal{Prefix: prefix}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rec := checkpointRecord{Key: k, Value: values[k]}
		if old, ok := cur[k]; ok {
			rec.Part, rec.Length, rec.Changes = old.rec.Part, old.rec.Length, old.rec.Changes
		}
		j.Records = append(j.Records, rec)
	}
	if err := c.ensureFlowDir(flow); err != nil {
		return err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, journalName), b); err != nil {
		return err
	}
	return applyJournal(dir, j)
}

// replayJournal applies an interrupted ReplaceCheckpoints.
func (c *Conn) replayJournal(dir string) error {
	path := filepath.Join(dir, journalName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var j replaceJournal
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("checkpoint journal %s: %w", path, err)
	}
	return applyJournal(dir, j)
}

// applyJournal writes the new checkpoints first, then deletes the replaced
// ones, then the journal; replaying it any number of times gives the same
// result.
func applyJournal(dir string, j replaceJournal) error {
	keep := make(map[string]bool, len(j.Records))
	for _, rec := range j.Records {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := writeTempAndRename(filepath.Join(dir, checkpointFile(rec.Key)), b); err != nil {
			return err
		}
		keep[rec.Key] = true
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	cur, err := readCheckpointDir(dir)
	if err != nil {
		return err
	}
	for k, e := range cur {
		if strings.HasPrefix(k, j.Prefix) && !keep[k] {
			if err := removeIfExists(e.file); err != nil {
				return err
			}
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := removeIfExists(filepath.Join(dir, journalName)); err != nil {
		return err
	}
	return syncDir(dir)
}

// DropCheckpoints forgets the flow: its checkpoints, and the part files that
// belong to it. A part file belongs to the flow whose checkpoint names it;
// one that no flow's checkpoint names (written before its partition's first
// checkpoint) belongs to nobody and goes too. Part files of other flows stay.
// Table files and schema sidecars stay: they are the output of finished
// copies.
func (c *Conn) DropCheckpoints(ctx context.Context, flow string) error {
	if err := checkFlow(flow); err != nil {
		return err
	}
	c.ckMu.Lock()
	defer c.ckMu.Unlock()
	if err := c.drop(ctx, flow); err != nil {
		return fmt.Errorf("drop checkpoints of flow %q in %s: %w", flow, c.dir, err)
	}
	return nil
}

func (c *Conn) drop(ctx context.Context, flow string) error {
	dir := c.flowDir(flow)
	// Renaming the flow's directory away is the commit point: after it, the
	// flow has no checkpoint at all, and its part files are orphans any
	// later LoadCheckpoints or DropCheckpoints deletes.
	if _, err := os.Stat(dir); err == nil {
		trash := filepath.Join(c.stateDir(), ".drop-"+strconv.FormatUint(rand.Uint64(), 36))
		if err := os.Rename(dir, trash); err != nil {
			return fmt.Errorf("rename %s: %w", dir, err)
		}
		if err := syncDir(c.stateDir()); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	c.mu.Lock()
	delete(c.flowDirs, flow)
	c.mu.Unlock()
	if err := removeTempFiles(c.dir); err != nil {
		return err
	}
	names, err := fileNames(c.dir)
	if err != nil {
		return err
	}
	if err := c.completeFinishes(names); err != nil {
		return err
	}
	others, err := c.otherFlowParts(flow)
	if err != nil {
		return err
	}
	// With the flow's checkpoints gone, its part files are named by no
	// flow, like those that never reached a checkpoint.
	if names, err = fileNames(c.dir); err != nil {
		return err
	}
	for _, p := range listParts(names, "") {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, theirs := others[p.name]; !theirs {
			if err := removeIfExists(filepath.Join(c.dir, p.name)); err != nil {
				return err
			}
		}
	}
	if err := syncDir(c.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// The flow's change files go with it: a new run numbers its own from 1.
	if c.changes {
		if err := c.cutChanges(0); err != nil {
			return err
		}
	}
	c.resetParts()
	c.mu.Lock()
	c.foreign = others
	c.mu.Unlock()
	return removeTrash(c.stateDir())
}

// removeTrash deletes dropped flows' directories, including any a crash left.
func removeTrash(stateDir string) error {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", stateDir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".drop-") {
			if err := os.RemoveAll(filepath.Join(stateDir, e.Name())); err != nil {
				return fmt.Errorf("remove %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}
