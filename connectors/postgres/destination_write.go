package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// OpenWriter returns a writer on its own connection.
func (c *Conn) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	if err := c.ensureMeta(ctx); err != nil {
		return nil, err
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, c.classify(err, "open a writer")
	}
	if err := c.writingSession(ctx, conn); err != nil {
		conn.Release()
		return nil, err
	}
	return &rowWriter{c: c, conn: conn}, nil
}

type rowWriter struct {
	c    *Conn
	conn *pgxpool.Conn
	// upsertPart is a partition whose rows met existing ones: its next
	// batches go straight to the upsert path.
	upsertPart string
	buf        []byte
	field      []byte
}

func (w *rowWriter) Close() error {
	if w.conn != nil {
		w.conn.Release()
		w.conn = nil
	}
	return nil
}

// WriteRows writes the batch with COPY and stores its checkpoint in the same
// transaction. A batch whose rows are already there (a retried or resumed
// partition) fails COPY with a unique violation; it is then written again
// as an upsert by primary key, so writing a batch twice leaves one copy. A
// table without a primary key relies on the checkpoint alone: a partition
// resumes after its last committed batch, so no row is written twice.
func (w *rowWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if b == nil || (b.Len() == 0 && b.Checkpoint == nil) {
		return nil
	}
	where := "partition " + b.Partition
	if b.Table != nil {
		where = fmt.Sprintf("table %s, partition %s", b.Table.Namespace, b.Partition)
	}
	if b.Len() == 0 {
		return w.c.inTx(ctx, w.conn.Conn(), func(tx pgx.Tx) error { return saveCheckpoint(ctx, tx, b.Checkpoint) }, where)
	}
	if b.Table == nil {
		return fmt.Errorf("%s: batch of %d rows without a table", where, b.Len())
	}
	dt, err := w.c.destTable(ctx, b.Table.Namespace)
	if err != nil {
		return err
	}
	if b.Raw != nil {
		return w.writeRaw(ctx, b, dt, where)
	}
	cols, err := writableColumns(b.Table, dt)
	if err != nil {
		return err
	}
	if w.upsertPart != b.Partition {
		w.upsertPart = ""
		err := w.copyRows(ctx, b, dt, cols)
		if err == nil {
			return nil
		}
		if sqlState(err) != "23505" {
			return w.c.classify(err, where)
		}
		w.upsertPart = b.Partition
	}
	return w.c.inTx(ctx, w.conn.Conn(), func(tx pgx.Tx) error {
		if err := upsertRows(ctx, tx, nil, b.Table, dt, cols, b.Rows); err != nil {
			return err
		}
		return saveCheckpoint(ctx, tx, b.Checkpoint)
	}, where)
}

// copyRows runs COPY FROM STDIN and the checkpoint in one transaction: in
// binary format when ferry has a binary encoder for every column (the
// server then parses nothing), in text format otherwise.
func (w *rowWriter) copyRows(ctx context.Context, b *model.RowBatch, dt *dstTable, cols []int) error {
	encs := make([]binEncoder, len(cols))
	binaryOK := true
	for j, i := range cols {
		if encs[j] = binEncoderFor(dt.cols[b.Table.Columns[i].Name].oid, b.Table.Columns[i].Type); encs[j] == nil {
			binaryOK = false
		}
	}
	var err error
	buf := w.buf[:0]
	if binaryOK {
		buf = append(buf, copyHeader...)
	}
	for _, row := range b.Rows {
		if len(row) != len(b.Table.Columns) {
			return fmt.Errorf("table %s: row has %d values for %d columns", b.Table.Namespace, len(row), len(b.Table.Columns))
		}
		if binaryOK {
			buf = append(buf, byte(len(cols)>>8), byte(len(cols)))
		}
		for j, i := range cols {
			v := row[i]
			if model.IsUnchanged(v) {
				return fmt.Errorf("table %s, column %s: a copied row cannot leave a value unchanged", b.Table.Namespace, b.Table.Columns[i].Name)
			}
			if binaryOK {
				if v == nil {
					buf = append(buf, 0xff, 0xff, 0xff, 0xff)
				} else if buf, err = encs[j](buf, v); err != nil {
					return fmt.Errorf("table %s, column %s, key %s: %w", b.Table.Namespace, b.Table.Columns[i].Name, keyText(b.Table, row), err)
				}
				continue
			}
			if j > 0 {
				buf = append(buf, '\t')
			}
			if v == nil {
				buf = append(buf, `\N`...)
				continue
			}
			w.field, err = appendText(w.field[:0], b.Table.Columns[i].Type, v)
			if err != nil {
				return fmt.Errorf("table %s, column %s, key %s: %w", b.Table.Namespace, b.Table.Columns[i].Name, keyText(b.Table, row), err)
			}
			buf = appendCopyEscaped(buf, w.field)
		}
		if !binaryOK {
			buf = append(buf, '\n')
		}
	}
	format := ""
	if binaryOK {
		buf = append(buf, 0xff, 0xff)
		format = " (FORMAT binary)"
	}
	if cap(buf) <= 2*maxBatchBytes {
		w.buf = buf // reused by the next batch, unless an outsized one
	}
	names := make([]string, len(cols))
	for j, i := range cols {
		names[j] = quoteIdent(b.Table.Columns[i].Name)
	}
	stmt := "COPY " + dt.name + " (" + strings.Join(names, ", ") + ") FROM STDIN" + format
	conn := w.conn.Conn()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(buf), stmt); err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the COPY error is the one to report
		return err
	}
	if err := saveCheckpoint(ctx, tx, b.Checkpoint); err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // reporting err
		return err
	}
	return tx.Commit(ctx)
}

// writableColumns are the positions of t's columns ferry writes: all but
// those the destination generates itself.
func writableColumns(t *model.Table, dt *dstTable) ([]int, error) {
	cols := make([]int, 0, len(t.Columns))
	for i, col := range t.Columns {
		dc := dt.cols[col.Name]
		if dc == nil {
			return nil, fmt.Errorf("table %s has no column %s at the destination", t.Namespace, col.Name)
		}
		if !dc.generated {
			cols = append(cols, i)
		}
	}
	return cols, nil
}
