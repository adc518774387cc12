package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Declare: the applier applies the changes of a table without a primary
// key by whole row (TableChanges.RowChanges). Each ApplyChanges is one
// transaction holding the flow's checkpoint, so a batch is applied at most
// once: a replay after a crash starts after the checkpoint the batch
// committed with, and the engine drops whole-row changes it already
// applied (engine/fullrow.go). As a source, such a table needs a full
// replica identity.
func (*Conn) Declare() connector.Declaration {
	return connector.Declaration{FullRows: true, SpanApply: true, Hints: connector.Hints{FullRowIdentity: "ALTER TABLE ... REPLICA IDENTITY FULL"}}
}

// rowStatementsPerBatch bounds the statements sent in one pipeline.
const rowStatementsPerBatch = 500

// applyRows applies a full-row table's changes in order: a run of inserts
// as one INSERT ... SELECT FROM unnest, each delete or update as a
// statement that touches exactly one row equal to the old row (found by
// its ctid, so one of two identical rows is deleted, not both), pipelined.
// A delete or update that finds no such row means the destination differs
// from the source: it stops the flow rather than guess.
func (w *changeWriter) applyRows(ctx context.Context, tx pgx.Tx, tc *model.TableChanges) error {
	t := tc.Table
	dt, err := w.c.destTable(ctx, t.Namespace)
	if err != nil {
		return err
	}
	cols, err := writableColumns(t, dt)
	if err != nil {
		return err
	}
	delSQL, updSQL := rowChangeSQL(t, dt, cols)
	var inserts []model.Row
	batch := &pgconn.Batch{}
	var pending []model.RowChange
	flushInserts := func() error {
		if len(inserts) == 0 {
			return nil
		}
		err := upsertRows(ctx, tx, nil, t, dt, cols, inserts)
		inserts = nil
		return err
	}
	flushBatch := func() error {
		if len(pending) == 0 {
			return nil
		}
		results, err := tx.Conn().PgConn().ExecBatch(ctx, batch).ReadAll()
		if err != nil {
			return fmt.Errorf("apply %d row changes: %w", len(pending), err)
		}
		for i, r := range results {
			if r.Err != nil {
				return fmt.Errorf("apply row change: %w", r.Err)
			}
			if r.CommandTag.RowsAffected() != 1 {
				rc := pending[i]
				what := "delete"
				if rc.New != nil {
					what = "update"
				}
				return fmt.Errorf("%s of row %s: no such row at the destination, so it differs from the source; check it with ferry verify and start the flow over (ferry sync --restart)",
					what, rowText(t, cols, rc.Old))
			}
		}
		batch, pending = &pgconn.Batch{}, pending[:0]
		return nil
	}
	for _, rc := range tc.RowChanges {
		if rc.Old == nil {
			if err := flushBatch(); err != nil {
				return err
			}
			inserts = append(inserts, rc.New)
			continue
		}
		if err := flushInserts(); err != nil {
			return err
		}
		params := make([][]byte, 0, 2*len(cols))
		for _, r := range []model.Row{rc.Old, rc.New} {
			if r == nil {
				continue
			}
			for _, i := range cols {
				if r[i] == nil {
					params = append(params, nil)
					continue
				}
				txt, err := textParam(t.Columns[i].Type, r[i])
				if err != nil {
					return fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
				}
				params = append(params, txt)
			}
		}
		sql := delSQL
		if rc.New != nil {
			sql = updSQL
		}
		batch.ExecParams(sql, params, nil, nil, nil)
		pending = append(pending, rc)
		if len(pending) >= rowStatementsPerBatch {
			if err := flushBatch(); err != nil {
				return err
			}
		}
	}
	if err := flushBatch(); err != nil {
		return err
	}
	return flushInserts()
}

// rowChangeSQL renders the statements deleting and updating one row equal
// to the old values ($1..$n, the writable columns). Types without an
// equality operator (json, xml, geometric) are compared as text.
func rowChangeSQL(t *model.Table, dt *dstTable, cols []int) (del, upd string) {
	conds := make([]string, len(cols))
	sets := make([]string, len(cols))
	for j, i := range cols {
		name := t.Columns[i].Name
		dc := dt.cols[name]
		p := "$" + strconv.Itoa(j+1)
		if noEquality(dc.cast) {
			conds[j] = "d." + quoteIdent(name) + "::text IS NOT DISTINCT FROM " + p + "::" + dc.cast + "::text"
		} else {
			conds[j] = "d." + quoteIdent(name) + " IS NOT DISTINCT FROM " + p + "::" + dc.cast
		}
		sets[j] = quoteIdent(name) + " = $" + strconv.Itoa(len(cols)+j+1) + "::" + dc.cast
	}
	where := "true"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	one := "WITH one AS MATERIALIZED (SELECT d.tableoid AS o, d.ctid AS c FROM " + dt.name + " AS d WHERE " + where + " LIMIT 1) "
	match := " WHERE d.ctid = (SELECT c FROM one) AND d.tableoid = (SELECT o FROM one)"
	del = one + "DELETE FROM " + dt.name + " AS d" + match
	upd = one + "UPDATE " + dt.name + " AS d SET " + strings.Join(sets, ", ") + match
	return del, upd
}

// noEquality reports types PostgreSQL has no equality operator for.
func noEquality(cast string) bool {
	base := strings.TrimSuffix(strings.TrimPrefix(cast, "pg_catalog."), "[]")
	switch base {
	case "json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle":
		return true
	}
	return false
}

// rowText renders a few values of a row for an error message.
func rowText(t *model.Table, cols []int, r model.Row) string {
	parts := make([]string, 0, len(cols))
	for _, i := range cols {
		v := "NULL"
		if r[i] != nil {
			txt, err := appendText(nil, t.Columns[i].Type, r[i])
			if err != nil {
				v = "?"
			} else {
				v = string(txt)
			}
		}
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		parts = append(parts, t.Columns[i].Name+"="+v)
		if len(parts) == 6 && len(cols) > 6 {
			parts = append(parts, "...")
			break
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
