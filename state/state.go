// Package state is the embedded store of a single-process flow: the plan, the
// flow's settings and its checkpoints, in one SQLite file per flow under the
// state directory. A file lock beside it keeps two processes from running the
// same flow at once.
//
// Checkpoints here are a lower bound on what is durable at the destination:
// they are written after the destination confirmed the data. A destination
// that keeps its own checkpoints (connector.CheckpointKeeper) is authoritative
// over this store on resume.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

// Store is one flow's state.
type Store struct {
	db   *sql.DB
	lock *os.File
	path string
}

// ErrLocked means another process runs the flow.
var ErrLocked = errors.New("flow is already running in another process")

// DefaultDir is where state lives unless --state-dir says otherwise:
// $XDG_STATE_HOME/ferry, or ~/.local/state/ferry.
func DefaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ferry")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "ferry")
	}
	return filepath.Join(os.TempDir(), "ferry-state")
}

// Path is the state file of a flow.
func Path(dir, flow string) string { return filepath.Join(dir, flow+".db") }

// Open opens (creating if needed) the state of flow under dir and takes its
// lock. Close releases it.
func Open(ctx context.Context, dir, flow string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	path := Path(dir, flow)
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock %s: %w", path+".lock", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("flow %q (state %s): %w", flow, path, ErrLocked)
		}
		return nil, fmt.Errorf("state lock %s: %w", path+".lock", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)")
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &Store{db: db, lock: lock, path: path}
	if _, err := db.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
		CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL);`); err != nil {
		s.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	return s, nil
}

// Running tells whether a process holds flow's lock under dir (runs it),
// without taking the lock for longer than the look.
func Running(dir, flow string) (bool, error) {
	path := Path(dir, flow) + ".lock"
	lock, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state lock %s: %w", path, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, fmt.Errorf("state lock %s: %w", path, err)
	}
	return false, nil // closing the file releases the lock
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Close closes the store and releases the flow's lock.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.lock != nil {
		if cerr := s.lock.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Remove deletes the flow's state files. The store must not be used after.
func (s *Store) Remove() error {
	var errs []error
	// A cutover's request and report belong to the flow too: a flow made
	// again under the name must not find the old one's report.
	for _, suffix := range []string{"", "-wal", "-shm", ".cutover", ".cutover-report"} {
		if err := os.Remove(s.path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := removeSnapshotRequests(s.path); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(s.path + ".lock"); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Reset forgets everything about the flow (--restart).
func (s *Store) Reset(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM meta; DELETE FROM checkpoints;`)
	return err
}

// Meta returns a metadata value, or "" when absent.
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("state %s: read %s: %w", s.path, key, err)
	}
	return v, nil
}

// SetMeta stores a metadata value.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("state %s: write %s: %w", s.path, key, err)
	}
	return nil
}

// Checkpoints returns every checkpoint whose key starts with prefix.
func (s *Store) Checkpoints(ctx context.Context, prefix string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM checkpoints WHERE substr(key, 1, ?) = ?`, len(prefix), prefix)
	if err != nil {
		return nil, fmt.Errorf("state %s: read checkpoints: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("state %s: read checkpoints: %w", s.path, err)
		}
		out[k] = v
	}
	return out, rows.Err()
}

// SaveCheckpoints stores several checkpoints in one transaction.
func (s *Store) SaveCheckpoints(ctx context.Context, values map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state %s: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO checkpoints (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
	if err != nil {
		return fmt.Errorf("state %s: %w", s.path, err)
	}
	defer stmt.Close()
	for k, v := range values {
		if _, err := stmt.ExecContext(ctx, k, v); err != nil {
			return fmt.Errorf("state %s: write checkpoint %s: %w", s.path, k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state %s: commit checkpoints: %w", s.path, err)
	}
	return nil
}

// Flows lists the flows that have state under dir.
func Flows(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".db") {
			out = append(out, strings.TrimSuffix(n, ".db"))
		}
	}
	return out, nil
}
