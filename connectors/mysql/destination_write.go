package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// maxStatement bounds one multi-row INSERT: past a few MiB a longer
// statement saves no round trip worth having and costs server memory.
const maxStatement = 4 << 20

// targetsFor returns the destination columns of t (in t's column order),
// read once per table from the server.
func (c *Conn) targetsFor(ctx context.Context, t *model.Table) (model.Namespace, []*target, error) {
	name, err := c.destName(t.Namespace)
	if err != nil {
		return name, nil, err
	}
	cached, ok := c.dest.cachedTargets(name)
	if ok && len(cached) == len(t.Columns) {
		return name, cached, nil
	}
	existing, err := c.destColumns(ctx, name)
	if err != nil {
		return name, nil, err
	}
	if len(existing) == 0 {
		return name, nil, fmt.Errorf("mysql %s: table %s does not exist", c.host, name)
	}
	byName := map[string]destColumn{}
	for _, ec := range existing {
		byName[strings.ToLower(ec.name)] = ec
	}
	out := make([]*target, len(t.Columns))
	for i, col := range t.Columns {
		ec, ok := byName[strings.ToLower(col.Name)]
		if !ok {
			return name, nil, fmt.Errorf("mysql %s: table %s has no column %s", c.host, name, col.Name)
		}
		out[i] = &target{name: ec.name, typ: col.Type, ct: ec.ct}
	}
	c.dest.storeTargets(name, out)
	return name, out, nil
}

// upsertSQL writes rows into table name with multi-row INSERT ... ON
// DUPLICATE KEY UPDATE statements (plain INSERTs for a table without a
// key) of at most maxStatement bytes, calling exec for each.
func (c *Conn) upsertStatements(t *model.Table, name model.Namespace, targets []*target, rows []model.Row, exec func(q []byte) error) error {
	var head strings.Builder
	head.WriteString("INSERT INTO " + quoteName(name) + " (")
	for i, tg := range targets {
		if i > 0 {
			head.WriteString(", ")
		}
		head.WriteString(quoteIdent(tg.name))
	}
	head.WriteString(") VALUES ")
	tail := ""
	if len(t.PrimaryKey) > 0 {
		var sets []string
		for _, tg := range targets {
			if !inKeyFold(t, tg.name) {
				q := quoteIdent(tg.name)
				sets = append(sets, q+" = VALUES("+q+")")
			}
		}
		if len(sets) == 0 {
			q := quoteIdent(targets[0].name)
			sets = append(sets, q+" = "+q) // every column is a key column: nothing to update
		}
		tail = " ON DUPLICATE KEY UPDATE " + strings.Join(sets, ", ")
	}
	limit := maxStatement
	if p := c.server.maxPacket - 1024; p > 0 && p < limit {
		limit = p
	}
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, head.String()...)
	n := 0
	var tuple []byte
	for _, row := range rows {
		if len(row) != len(targets) {
			return fmt.Errorf("row has %d values for %d columns", len(row), len(targets))
		}
		tuple = append(tuple[:0], '(')
		for i, tg := range targets {
			if i > 0 {
				tuple = append(tuple, ',')
			}
			var err error
			if tuple, err = appendLiteral(tuple, tg, row[i]); err != nil {
				return columnErr(t, tg.name, row, err)
			}
		}
		tuple = append(tuple, ')')
		if n > 0 && len(buf)+1+len(tuple)+len(tail) > limit {
			if err := exec(append(buf, tail...)); err != nil {
				return err
			}
			buf, n = append(buf[:0], head.String()...), 0
		}
		if len(head.String())+len(tuple)+len(tail) > limit {
			return fmt.Errorf("row %s takes %d bytes, more than the destination's max_allowed_packet (%d) allows in one statement; raise max_allowed_packet", formatKey(t, row), len(tuple), c.server.maxPacket)
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, tuple...)
		n++
	}
	if n > 0 {
		return exec(append(buf, tail...))
	}
	return nil
}

func inKeyFold(t *model.Table, col string) bool {
	for _, k := range t.PrimaryKey {
		if strings.EqualFold(k, col) {
			return true
		}
	}
	return false
}

// OpenWriter returns a writer of copied rows.
func (c *Conn) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	return &rowWriter{c: c}, nil
}

type rowWriter struct{ c *Conn }

func (w *rowWriter) Close() error { return nil }

// WriteRows upserts the batch and stores its checkpoint in one transaction.
func (w *rowWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if b == nil || (len(b.Rows) == 0 && b.Checkpoint == nil) {
		return nil
	}
	c := w.c
	what := "partition " + b.Partition
	var name model.Namespace
	var targets []*target
	if len(b.Rows) > 0 {
		if b.Table == nil {
			return fmt.Errorf("%s: batch of %d rows without a table", what, len(b.Rows))
		}
		var err error
		if name, targets, err = c.targetsFor(ctx, b.Table); err != nil {
			return err
		}
		what = fmt.Sprintf("mysql %s: table %s, partition %s", c.host, name, b.Partition)
	}
	return c.inTx(ctx, what, func(tx *sql.Tx) error {
		if len(b.Rows) > 0 && c.canLoadInfile(targets) {
			if err := c.loadInfile(ctx, tx, b.Table, name, targets, b.Rows); err != nil {
				return err
			}
		} else if len(b.Rows) > 0 {
			err := c.upsertStatements(b.Table, name, targets, b.Rows, func(q []byte) error {
				_, err := tx.ExecContext(ctx, string(q))
				return err
			})
			if err != nil {
				return fmt.Errorf("write %d rows: %w", len(b.Rows), err)
			}
		}
		return c.saveCheckpoint(ctx, tx, b.Checkpoint)
	})
}
