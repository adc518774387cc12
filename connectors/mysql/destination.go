package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// What the destination half offers (its files are listed in the package doc).
var (
	_ connector.Destination      = (*Conn)(nil)
	_ connector.ChangeApplier    = (*Conn)(nil)
	_ connector.CheckpointKeeper = (*Conn)(nil)
	_ connector.SchemaChanger    = (*Conn)(nil)
	_ connector.TableChecker     = (*Conn)(nil)
)

const (
	// checkpointTable holds the checkpoints of the flows writing to a
	// destination database.
	checkpointTable = "_ferry_checkpoints"
	// checkpointDB holds them when the destination URL names no database.
	checkpointDB = "_ferry"
)

// destState is what the destination half learns from the server once and
// keeps: each table's columns, and the databases holding a checkpoint table.
type destState struct {
	mu      sync.Mutex
	targets map[model.Namespace][]*target // column types, by destination table
	ensured map[string]bool               // databases whose checkpoint table exists

	// noInfile forces multi-row INSERTs (tests compare both load paths).
	noInfile bool
}

// cachedTargets returns the columns of table name read earlier.
func (d *destState) cachedTargets(name model.Namespace) ([]*target, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, ok := d.targets[name]
	return ts, ok
}

func (d *destState) storeTargets(name model.Namespace, ts []*target) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.targets == nil {
		d.targets = map[model.Namespace][]*target{}
	}
	d.targets[name] = ts
}

// forgetTargets drops table name's columns, after it was altered.
func (d *destState) forgetTargets(name model.Namespace) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.targets, name)
}

func (d *destState) checkpointTableEnsured(db string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ensured[db]
}

func (d *destState) markCheckpointTable(db string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ensured == nil {
		d.ensured = map[string]bool{}
	}
	d.ensured[db] = true
}

// destName is where a destination table lives: in the URL's database when
// it names one, else in a database named after the namespace's schema.
func (c *Conn) destName(ns model.Namespace) (model.Namespace, error) {
	db := c.database
	if db == "" {
		db = ns.Schema
	}
	if db == "" {
		return model.Namespace{}, errs.BadConfig(fmt.Sprintf("table %s has no schema to name its MySQL database after", ns), "name a database in the destination URL (mysql://host/database)")
	}
	return model.Namespace{Schema: db, Table: ns.Table}, nil
}

// checkpointDB is the database holding _ferry_checkpoints.
func (c *Conn) checkpointDB() string {
	if c.database != "" {
		return c.database
	}
	return checkpointDB
}

func (c *Conn) checkpointName() string {
	return quoteIdent(c.checkpointDB()) + "." + quoteIdent(checkpointTable)
}

// inTx runs fn in a transaction, retried when the server picked it as a
// deadlock victim or it waited too long for a lock: every write ferry makes
// is idempotent, so a retry is harmless.
func (c *Conn) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt*attempt) * 20 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var tx *sql.Tx
		tx, err = c.db.BeginTx(ctx, &sql.TxOptions{Isolation: c.isolation()})
		if err != nil {
			return outage(err, fmt.Errorf("%s: begin: %w", what, c.scrubber.Err(err)))
		}
		if err = fn(tx); err != nil {
			err = rollback(tx, err)
			if isRetryable(err) {
				continue
			}
			return outage(err, fmt.Errorf("%s: %w", what, c.scrubber.Err(err)))
		}
		if err = tx.Commit(); err != nil {
			if isRetryable(err) {
				continue
			}
			return outage(err, fmt.Errorf("%s: commit: %w", what, c.scrubber.Err(err)))
		}
		return nil
	}
	return fmt.Errorf("%s: %w (after 8 attempts)", what, c.scrubber.Err(err))
}

// isolation is READ COMMITTED, which takes no gap locks (parallel writers
// then rarely deadlock), unless the destination logs statements, which
// InnoDB refuses under READ COMMITTED.
func (c *Conn) isolation() sql.IsolationLevel {
	if c.server.logBin && c.server.format == "STATEMENT" {
		return sql.LevelDefault
	}
	return sql.LevelReadCommitted
}

// isRetryable reports a transaction error that a retry of the same
// (idempotent) transaction may cure: a deadlock or a lock wait timeout.
func isRetryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// outage marks err as the server being unavailable when its cause is a
// lost connection, so the engine retries instead of failing the flow.
func outage(cause, err error) error {
	if lostConnection(cause) {
		return errs.Unavailable(err)
	}
	return err
}

// rollback ends a failed transaction, keeping the original error first.
func rollback(tx *sql.Tx, err error) error {
	if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
	}
	return err
}
