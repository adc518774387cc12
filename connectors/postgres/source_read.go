package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/model"
)

// maxBatchBytes ends a batch early when its rows are wide (TOAST-heavy
// tables), so memory stays bounded whatever the row size.
const maxBatchBytes = 4 << 20

// knownOIDs are the built-in types a binary-read column may turn out to
// be; another type (a domain, an enum) is trusted to be what the plan says.
var knownOIDs = map[uint32]bool{
	oidBool: true, oidBytea: true, oidChar: true, oidName: true, oidInt8: true, oidInt2: true, oidInt4: true,
	oidText: true, oidOID: true, oidJSON: true, oidFloat4: true, oidFloat8: true, oidMoney: true, oidMacaddr: true,
	oidInet: true, oidCIDR: true, oidBpchar: true, oidVarchar: true, oidDate: true, oidTime: true, oidTimestamp: true,
	oidTimestamptz: true, oidInterval: true, oidTimetz: true, oidNumeric: true, oidUUID: true, oidJSONB: true,
}

type tid struct{ block, offset int64 }

func parseTID(s string) (tid, error) {
	if len(s) < 5 || s[0] != '(' || s[len(s)-1] != ')' {
		return tid{}, fmt.Errorf("invalid ctid %q", s)
	}
	a, b, ok := strings.Cut(s[1:len(s)-1], ",")
	if !ok {
		return tid{}, fmt.Errorf("invalid ctid %q", s)
	}
	blk, err1 := strconv.ParseInt(a, 10, 64)
	off, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return tid{}, fmt.Errorf("invalid ctid %q", s)
	}
	return tid{blk, off}, nil
}

func (x tid) less(y tid) bool {
	return x.block < y.block || x.block == y.block && x.offset < y.offset
}

// ReadPartition reads the partition's block range in physical order, after
// the cursor (the ctid of the last row read). When the partition names a
// snapshot this Conn still holds (this process planned the flow and the
// copy is not over), it reads that snapshot (exactly T0 under CDC);
// otherwise it reads current data, which the change stream from T0 then
// converges.
func (c *Conn) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	return c.readPartition(ctx, t, p, from, 0, emit)
}

// ReadChunk reads up to rows rows of t after cursor from, in the order
// ReadPartition reads (physical, by ctid), at the server's current state:
// an incremental snapshot's chunk (connector.ChunkReader). Fewer rows than
// asked for means the table has no more.
func (c *Conn) ReadChunk(ctx context.Context, t *model.Table, from model.Cursor, rows int) (*model.RowBatch, error) {
	p := model.Partition{ID: t.Namespace.String() + "/chunk", Table: t.Namespace, BatchRows: rows}
	out := &model.RowBatch{}
	err := c.readPartition(ctx, t, p, from, rows, func(b *model.RowBatch) error {
		out.Rows = append(out.Rows, b.Rows...)
		out.Bytes += b.Bytes
		out.Cursor = b.Cursor
		return nil
	})
	return out, err
}

// readPartition is ReadPartition, reading at most limit rows when limit > 0.
func (c *Conn) readPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, limit int, emit func(*model.RowBatch) error) error {
	decs, err := tableDecoders(t)
	if err != nil {
		return err
	}
	keyed := isKeyPartition(p)
	var q string
	if keyed {
		q, err = keyRangeQuery(t, p, from)
	} else {
		q, _, err = partitionQuery(t, p, from, false)
	}
	if err != nil {
		return err
	}
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	return c.readQuery(ctx, t, p, q, keyed, decs, emit)
}

// readQuery reads the rows q selects (t's columns, then the ctid, or the
// key's text when keyed) in batches of p's size.
func (c *Conn) readQuery(ctx context.Context, t *model.Table, p model.Partition, q string, keyed bool, decs []decoder, emit func(*model.RowBatch) error) error {
	batchRows := p.BatchSize(defaultBatchRows)

	conn, end, err := c.beginRead(ctx, p)
	if err != nil {
		return err
	}
	defer end()

	// Simple types are read in binary, the others as text.
	bins := make([]binDecoder, len(decs))
	allowed := make([][]uint32, len(decs))
	formats := make([]int16, len(decs)+1)
	for i, col := range t.Columns {
		if bins[i], allowed[i] = binDecoderFor(col.Type); bins[i] != nil {
			formats[i] = 1
		}
	}
	rr := conn.PgConn().ExecParams(ctx, q, nil, nil, nil, formats)
	for i, fd := range rr.FieldDescriptions() {
		if i < len(bins) && bins[i] != nil && knownOIDs[fd.DataTypeOID] && !slices.Contains(allowed[i], fd.DataTypeOID) {
			rr.Close() //nolint:errcheck // reporting the type change
			return fmt.Errorf("table %s, column %s: its type changed since the flow was planned (now type %d); start the flow over with --restart", t.Namespace, t.Columns[i].Name, fd.DataTypeOID)
		}
	}
	batch := &model.RowBatch{Rows: make([]model.Row, 0, batchRows)}
	var last tid
	first := true
	var emitErr error
	var slab model.Slab
	for rr.NextRow() {
		vals := rr.Values()
		row := slab.Row(len(decs))
		for i, d := range decs {
			if vals[i] == nil {
				continue
			}
			var v any
			var err error
			if bins[i] != nil {
				v, err = bins[i](&slab, vals[i])
			} else {
				v, err = d(string(vals[i]))
			}
			if err != nil {
				key := failedRowKey(t, decs, bins, vals)
				rr.Close() //nolint:errcheck // the decode error is the one to report
				return fmt.Errorf("table %s, column %s%s: %w; exclude the table with --tables '!%s' if it cannot be fixed at the source", t.Namespace, t.Columns[i].Name, key, err, t.Namespace)
			}
			row[i] = v
			batch.Bytes += int64(len(vals[i]))
		}
		if keyed {
			// In key order, by the index: the whole key is the cursor.
			batch.Rows = append(batch.Rows, row)
			batch.Cursor = model.Cursor(keyPrefix + string(vals[len(decs)]))
			if len(batch.Rows) >= batchRows || batch.Bytes >= maxBatchBytes {
				if emitErr = emit(batch); emitErr != nil {
					break
				}
				batch = &model.RowBatch{Rows: make([]model.Row, 0, batchRows)}
			}
			continue
		}
		ctidText := string(vals[len(decs)])
		cur, err := parseTID(ctidText)
		if err != nil {
			rr.Close() //nolint:errcheck // reporting err
			return fmt.Errorf("partition %s: %w", p.ID, err)
		}
		if !first && !last.less(cur) {
			rr.Close() //nolint:errcheck // reporting the order problem
			return fmt.Errorf("partition %s of %s: rows came out of physical order (%v after %v); ferry's cursor needs a TID range or sequential scan", p.ID, t.Namespace, cur, last)
		}
		first, last = false, cur
		batch.Rows = append(batch.Rows, row)
		batch.Cursor = model.Cursor(ctidText)
		if len(batch.Rows) >= batchRows || batch.Bytes >= maxBatchBytes {
			if emitErr = emit(batch); emitErr != nil {
				break
			}
			batch = &model.RowBatch{Rows: make([]model.Row, 0, batchRows)}
		}
	}
	if emitErr != nil {
		rr.Close() //nolint:errcheck // the emit error is the one to report
		return emitErr
	}
	if _, err := rr.Close(); err != nil {
		return c.classify(err, fmt.Sprintf("read partition %s of %s", p.ID, t.Namespace))
	}
	if len(batch.Rows) > 0 {
		return emit(batch)
	}
	return nil
}

// beginRead takes a pooled connection for a partition read and starts its
// transaction (readTx); end rolls it back and releases the connection.
func (c *Conn) beginRead(ctx context.Context, p model.Partition) (conn *pgx.Conn, end func(), err error) {
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, c.classify(err, "read partition "+p.ID)
	}
	tx, err := c.readTx(ctx, pc.Conn(), p)
	if err != nil {
		pc.Release()
		return nil, nil, c.classify(err, "read partition "+p.ID)
	}
	end = func() {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only; ends the transaction whatever happened
		pc.Release()
	}
	return pc.Conn(), end, nil
}

// readTx starts a read-only transaction for a partition read, at the
// snapshot the partition names when this Conn still holds it open, and at
// the current state otherwise (a plan made by another process, a snapshot
// released since). Sequential scans start at block 0 and run without
// parallel workers, so rows arrive in ctid order.
func (c *Conn) readTx(ctx context.Context, conn *pgx.Conn, p model.Partition) (pgx.Tx, error) {
	iso := pgx.ReadCommitted
	snap := p.Snapshot
	if !c.src.holds(snap) {
		snap = ""
	}
	if snap != "" {
		iso = pgx.RepeatableRead
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if snap != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snap)); err != nil {
			// The snapshot ended (its connection closed): read current data.
			tx.Rollback(ctx) //nolint:errcheck // starting over
			if tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadOnly}); err != nil {
				return nil, err
			}
		}
	}
	if _, err := tx.Exec(ctx, "SET LOCAL synchronize_seqscans = off; SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
		tx.Rollback(ctx) //nolint:errcheck // failing anyway
		return nil, err
	}
	return tx, nil
}

// failedRowKey decodes the key columns of a row another column of which
// failed to decode, so the error names the row to fix: ", key (id=5)", or
// "" for a table without a key.
func failedRowKey(t *model.Table, decs []decoder, bins []binDecoder, vals [][]byte) string {
	row := make(model.Row, len(t.Columns))
	for _, i := range t.KeyIndexes() {
		if i < 0 || i >= len(vals) || vals[i] == nil {
			continue
		}
		var err error
		if bins[i] != nil {
			row[i], err = bins[i](new(model.Slab), vals[i])
		} else {
			row[i], err = decs[i](string(vals[i]))
		}
		if err != nil {
			row[i] = string(vals[i]) // model.KeyText prints what it cannot format
		}
	}
	if key := model.KeyText(t, row); key != "" {
		return ", key " + key
	}
	return ""
}

// partitionQuery selects the partition's columns after the cursor, with
// the ctid last, or first when ctidFirst, from relation rel (the table or
// one of its leaf partitions).
func partitionQuery(t *model.Table, p model.Partition, from model.Cursor, ctidFirst bool) (q, rel string, err error) {
	rel, lo, err := decodeBound(p.Lower)
	if err != nil {
		return "", "", fmt.Errorf("partition %s: %w", p.ID, err)
	}
	_, hi, err := decodeBound(p.Upper)
	if err != nil {
		return "", "", fmt.Errorf("partition %s: %w", p.ID, err)
	}
	if rel == "" {
		rel = qualified(t.Namespace)
	}
	var conds []string
	switch {
	case from != "":
		if _, err := parseTID(string(from)); err != nil {
			return "", "", fmt.Errorf("partition %s: cursor: %w", p.ID, err)
		}
		conds = append(conds, fmt.Sprintf("ctid > '%s'::tid", from))
	case lo > 0:
		conds = append(conds, fmt.Sprintf("ctid >= '(%d,0)'::tid", lo))
	}
	if p.Upper != "" {
		conds = append(conds, fmt.Sprintf("ctid < '(%d,0)'::tid", hi))
	}
	cols := make([]string, 0, len(t.Columns)+1)
	if ctidFirst {
		cols = append(cols, "ctid")
	}
	for _, col := range t.Columns {
		cols = append(cols, quoteIdent(col.Name))
	}
	if !ctidFirst {
		cols = append(cols, "ctid")
	}
	q = "SELECT " + strings.Join(cols, ", ") + " FROM ONLY " + rel
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q, rel, nil
}
