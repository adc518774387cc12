// Package sqlite is ferry's SQLite connector: a source (discovery, a
// primary-key range plan, keyset reads) and a destination (tables, upserts,
// change application, checkpoints kept in the same transaction as the rows).
// SQLite has no change stream, so it is never a CDC source.
//
// URLs:
//
//	sqlite:///abs/path/file.db   absolute path
//	sqlite:/abs/path/file.db     absolute path
//	sqlite:rel/file.db           path relative to the working directory
//	sqlite://./rel/file.db       same, for those who prefer slashes
//
// sqlite://host/... is refused (SQLite files are local); no query parameters
// are accepted. As a source the file must exist and is only read; as a
// destination it is created on the first write and switched to WAL.
//
// Namespaces: a SQLite file has one schema, "main". A destination table is
// named after Namespace.Table alone and Namespace.Schema is ignored, so
// shop.items and public.items both map to "items"; CreateTables refuses a set
// of tables in which two map to the same name.
//
// Types: every canonical kind maps to a declared type from which discovery
// recovers the same kind (see declType), so a file written by ferry reads back
// exactly, with nothing kept outside the table definitions.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "sqlite",
		Summary:   "SQLite database file (source and destination; no CDC)",
		Example:   "sqlite:///tmp/ferry.db",
		Open:      connector.OpenerOf(Open),
		Prototype: (*Conn)(nil),
	})
}

var (
	_ connector.Source           = (*Conn)(nil)
	_ connector.Destination      = (*Conn)(nil)
	_ connector.ChangeApplier    = (*Conn)(nil)
	_ connector.CheckpointKeeper = (*Conn)(nil)
	_ connector.SchemaChanger    = (*Conn)(nil)
	_ connector.TableChecker     = (*Conn)(nil)
)

const (
	// busyTimeoutMS bounds how long a statement waits for another process's
	// lock before failing with SQLITE_BUSY.
	busyTimeoutMS = 10000
	// checkpointTable holds the checkpoints of the flows writing to the file.
	checkpointTable = "_ferry_checkpoints"
)

// Conn is an opened SQLite file. Its database handles are opened lazily: the
// read pool by the first source call (which refuses a missing file rather
// than create it), the write pool by the first destination call (which
// creates the file).
type Conn struct {
	path string

	mu  sync.Mutex
	rdb *sql.DB
	// wdb holds a single connection: SQLite allows one writer at a time, and
	// queueing the engine's parallel writers on it here is cheaper and more
	// predictable than letting them collide on SQLITE_BUSY.
	wdb *sql.DB

	// batchRows is the batch size the last Plan asked for; ReadPartition
	// has no options of its own.
	batchRows atomic.Int64
}

// Open parses a sqlite URL. It touches no file: see Conn.
func Open(_ context.Context, u *url.URL) (*Conn, error) {
	p, err := pathFromURL(u)
	if err != nil {
		return nil, err
	}
	return &Conn{path: p}, nil
}

// pathFromURL extracts the absolute file path from a sqlite URL.
func pathFromURL(u *url.URL) (string, error) {
	return connector.LocalFilePath(u, "SQLite", "file.db", func(p string) bool { return p == ":memory:" || strings.HasPrefix(p, "file:") })
}

// dsn builds the driver's data source name for the file with the given
// pragmas. The file: URI form keeps paths with '?' or '#' intact.
func (c *Conn) dsn(q url.Values, pragmas ...string) string {
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return (&url.URL{Scheme: "file", Path: c.path, RawQuery: q.Encode()}).String()
}

// reader returns the read pool, refusing a file that does not exist.
func (c *Conn) reader(ctx context.Context) (*sql.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rdb != nil {
		return c.rdb, nil
	}
	st, err := os.Stat(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &errs.ConfigError{
			Msg: fmt.Sprintf("sqlite file %s does not exist", c.path),
			Fix: "check the path; a source file must exist, as in sqlite:///absolute/path.db or sqlite:relative/path.db",
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite file %s: %w", c.path, err)
	}
	if st.IsDir() {
		return nil, errs.BadConfig(fmt.Sprintf("sqlite path %s is a directory", c.path), "give the path of a database file")
	}
	db, err := sql.Open("sqlite", c.dsn(url.Values{}, fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS), "query_only(1)"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite file %s: %w", c.path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite file %s: %w", c.path, err), db.Close())
	}
	c.rdb = db
	return db, nil
}

// writer returns the write pool, creating the file and the checkpoint table
// if needed.
func (c *Conn) writer(ctx context.Context) (*sql.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wdb != nil {
		return c.wdb, nil
	}
	if st, err := os.Stat(filepath.Dir(c.path)); err != nil || !st.IsDir() {
		return nil, &errs.ConfigError{
			Msg: fmt.Sprintf("directory of sqlite file %s does not exist", c.path),
			Fix: "create the directory first; ferry creates the file, not its directory",
			Err: err,
		}
	}
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never
	// fails half-way because another process started writing.
	db, err := sql.Open("sqlite", c.dsn(url.Values{"_txlock": {"immediate"}},
		fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"cache_size(-32768)", // 32 MiB: upserts into big tables walk the key index
	))
	if err != nil {
		return nil, fmt.Errorf("open sqlite file %s: %w", c.path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	const ddl = `CREATE TABLE IF NOT EXISTS ` + checkpointTable + ` (
		flow TEXT NOT NULL,
		key TEXT NOT NULL,
		value TEXT NOT NULL,
		PRIMARY KEY (flow, key)
	)`
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, errors.Join(fmt.Errorf("create %s in sqlite file %s: %w", checkpointTable, c.path, err), db.Close())
	}
	c.wdb = db
	return db, nil
}

// Close closes the file's database handles.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var failed []error
	if c.rdb != nil {
		if err := c.rdb.Close(); err != nil {
			failed = append(failed, fmt.Errorf("close sqlite file %s: %w", c.path, err))
		}
		c.rdb = nil
	}
	if c.wdb != nil {
		if err := c.wdb.Close(); err != nil {
			failed = append(failed, fmt.Errorf("close sqlite file %s: %w", c.path, err))
		}
		c.wdb = nil
	}
	return errors.Join(failed...)
}

// quoteIdent quotes a SQLite identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// rollback ends a failed transaction, keeping the original error first.
func rollback(tx *sql.Tx, err error) error {
	if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
	}
	return err
}
