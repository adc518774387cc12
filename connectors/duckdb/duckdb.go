//go:build cgo && duckdb

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	duck "github.com/duckdb/duckdb-go/v2"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "duckdb",
		Summary:   "DuckDB database file (source and destination; no CDC; one process writes a file)",
		Example:   "duckdb:///tmp/ferry.duckdb",
		Open:      connector.OpenerOf(Open),
		Prototype: (*Conn)(nil),
	})
}

var (
	_ connector.Source           = (*Conn)(nil)
	_ connector.Destination      = (*Conn)(nil)
	_ connector.ChangeApplier    = (*Conn)(nil)
	_ connector.CheckpointKeeper = (*Conn)(nil)
	_ connector.TableChecker     = (*Conn)(nil)
	_ connector.Emptier          = (*Conn)(nil)
	_ connector.KeyReader        = (*Conn)(nil)
)

const (
	// catalog is the name the file is attached under in every connection:
	// DuckDB would name it after the file, and a file rep.duckdb holding a
	// schema rep makes "rep.orders" ambiguous. Every name ferry writes is
	// qualified with it.
	catalog = "ferryfile"
	// checkpointTable holds the checkpoints of the flows writing to the
	// file, in its main schema.
	checkpointTable = catalog + `.main."_ferry_checkpoints"`
)

// Conn is an opened DuckDB file. The database handle is taken lazily: by
// the first source call (which refuses a missing file) or the first
// destination call (which creates it).
type Conn struct {
	path string

	mu sync.Mutex
	h  *handle

	// batchRows is the batch size the last Plan asked for.
	batchRows atomic.Int64
}

// Open parses a duckdb URL. It touches no file: see Conn.
func Open(_ context.Context, u *url.URL) (*Conn, error) {
	p, err := pathFromURL(u)
	if err != nil {
		return nil, err
	}
	return &Conn{path: p}, nil
}

// pathFromURL extracts the absolute file path from a duckdb URL.
func pathFromURL(u *url.URL) (string, error) {
	return connector.LocalFilePath(u, "DuckDB", "file.duckdb", func(p string) bool { return p == ":memory:" || strings.HasPrefix(p, "md:") })
}

// handle is one process's database on one file, shared by every Conn on
// it: DuckDB must not open a file twice in one process (two instances
// would each think they own it).
type handle struct {
	db   *sql.DB
	refs int
	// byKey serializes the writes that delete or update rows by key (change
	// batches, and copied batches written again by key): DuckDB's optimistic
	// concurrency fails one of two transactions that touch the same rows, as
	// an incremental snapshot's chunk and a change batch of the same keys
	// would. Plain appends run side by side.
	byKey sync.Mutex
	// made says the checkpoint table exists (guarded by handlesMu).
	made bool
}

var (
	handlesMu sync.Mutex
	handles   = map[string]*handle{}
)

// acquire returns the process's handle on path, opening the file (and
// creating it when create is set).
func acquire(ctx context.Context, path string, create bool) (*handle, error) {
	handlesMu.Lock()
	defer handlesMu.Unlock()
	if h, ok := handles[path]; ok {
		h.refs++
		return h, nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !create:
		return nil, &errs.ConfigError{
			Msg: fmt.Sprintf("duckdb file %s does not exist", path),
			Fix: "check the path; a source file must exist, as in duckdb:///absolute/path.duckdb or duckdb:relative/path.duckdb",
		}
	case errors.Is(err, fs.ErrNotExist):
		if dst, err := os.Stat(filepath.Dir(path)); err != nil || !dst.IsDir() {
			return nil, &errs.ConfigError{
				Msg: fmt.Sprintf("directory of duckdb file %s does not exist", path),
				Fix: "create the directory first; ferry creates the file, not its directory",
				Err: err,
			}
		}
	case err != nil:
		return nil, fmt.Errorf("duckdb file %s: %w", path, err)
	case st.IsDir():
		return nil, errs.BadConfig(fmt.Sprintf("duckdb path %s is a directory", path), "give the path of a database file")
	}
	// An in-memory database with the file attached under a fixed name; the
	// attach takes DuckDB's lock on the file.
	attach := "ATTACH IF NOT EXISTS " + quoteLit(path) + " AS " + catalog + "; USE " + catalog
	connector, err := duck.NewConnector("", func(ex driver.ExecerContext) error {
		_, err := ex.ExecContext(context.Background(), attach, nil)
		return err
	})
	if err != nil {
		return nil, openErr(path, err)
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(openErr(path, err), db.Close())
	}
	h := &handle{db: db, refs: 1}
	handles[path] = h
	return h, nil
}

// openErr explains a file DuckDB could not open: most often another
// process holds its lock.
func openErr(path string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "Could not set lock") || strings.Contains(msg, "Conflicting lock") {
		return &errs.ConfigError{
			Msg: fmt.Sprintf("duckdb file %s: another process has it open (%s)", path, firstLine(msg)),
			Fix: "DuckDB lets one process use a file at a time: stop the other process (a DuckDB shell, another ferry) or use another file",
		}
	}
	return fmt.Errorf("open duckdb file %s: %w", path, err)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func release(path string, h *handle) error {
	handlesMu.Lock()
	defer handlesMu.Unlock()
	h.refs--
	if h.refs > 0 {
		return nil
	}
	delete(handles, path)
	if err := h.db.Close(); err != nil {
		return fmt.Errorf("close duckdb file %s: %w", path, err)
	}
	return nil
}

// reader returns the file's handle for reading; a missing file is refused.
func (c *Conn) reader(ctx context.Context) (*handle, error) { return c.get(ctx, false) }

// writer returns the file's handle for writing, creating the file.
func (c *Conn) writer(ctx context.Context) (*handle, error) { return c.get(ctx, true) }

func (c *Conn) get(ctx context.Context, create bool) (*handle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		h, err := acquire(ctx, c.path, create)
		if err != nil {
			return nil, err
		}
		c.h = h
	}
	if create {
		handlesMu.Lock()
		defer handlesMu.Unlock()
		if !c.h.made {
			const ddl = `CREATE TABLE IF NOT EXISTS ` + checkpointTable + ` (
				flow VARCHAR NOT NULL,
				key VARCHAR NOT NULL,
				value VARCHAR NOT NULL,
				PRIMARY KEY (flow, key)
			)`
			if _, err := c.h.db.ExecContext(ctx, ddl); err != nil {
				return nil, fmt.Errorf("duckdb file %s: create _ferry_checkpoints: %w", c.path, err)
			}
			c.h.made = true
		}
	}
	return c.h, nil
}

// Close releases the file's handle.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	h := c.h
	c.h = nil
	return release(c.path, h)
}

// quoteIdent quotes a DuckDB identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLit quotes a DuckDB string literal.
func quoteLit(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

var _ connector.ProcessHolder = (*Conn)(nil)

// Hold opens the file for writing now and keeps it open until Close:
// DuckDB's lock on it then keeps every other process out.
func (c *Conn) Hold(ctx context.Context) error {
	_, err := c.writer(ctx)
	return err
}
