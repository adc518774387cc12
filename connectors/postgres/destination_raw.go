package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// rawTarget is how a destination table takes a raw format: the COPY
// statement, and the element OID to write into each array column's values
// (0 for the other columns; nil when there is no array column).
type rawTarget struct {
	format *model.RawFormat
	copy   string
	elems  []uint32
	// generated marks the columns the destination computes itself: their
	// fields are dropped from the tuples (nil when there are none).
	generated []bool
}

// AcceptsRaw accepts the format when t exists here with exactly the
// format's columns and types: the tuples are then stored as they are, less
// the fields of columns the destination generates.
func (c *Conn) AcceptsRaw(ctx context.Context, t *model.Table, f *model.RawFormat) (bool, error) {
	rt, err := c.rawTarget(ctx, t, f)
	return rt != nil, err
}

func (c *Conn) rawTarget(ctx context.Context, t *model.Table, f *model.RawFormat) (*rawTarget, error) {
	if f == nil || f.Name != rawFormatName || len(f.Columns) != len(f.Types) || len(f.Columns) != len(t.Columns) {
		return nil, nil
	}
	key := qualified(t.Namespace)
	rt := c.dst.rawTarget(key)
	if rt != nil && sameFormat(rt.format, f) {
		return rt, nil
	}
	for i, col := range t.Columns {
		if col.Name != f.Columns[i] {
			return nil, nil
		}
	}
	cols, ok, err := wireColumns(ctx, c.pool, key, f.Columns)
	if err != nil {
		return nil, c.classify(err, "read column types of "+t.Namespace.String())
	}
	if !ok {
		return nil, nil
	}
	rt = &rawTarget{format: f}
	names := make([]string, 0, len(cols))
	for i, col := range cols {
		if col.generated {
			if rt.generated == nil {
				rt.generated = make([]bool, len(cols))
			}
			rt.generated[i] = true
			continue
		}
		if col.sig != f.Types[i] {
			return nil, nil
		}
		names = append(names, quoteIdent(f.Columns[i]))
		if col.elem != 0 {
			if rt.elems == nil {
				rt.elems = make([]uint32, len(cols))
			}
			rt.elems[i] = col.elem
		}
	}
	rt.copy = "(" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary)"
	c.dst.keepRawTarget(key, rt)
	return rt, nil
}

func sameFormat(a, b *model.RawFormat) bool {
	if a == b {
		return true
	}
	if a.Name != b.Name || len(a.Columns) != len(b.Columns) || len(a.Types) != len(b.Types) {
		return false
	}
	for i := range a.Columns {
		if a.Columns[i] != b.Columns[i] {
			return false
		}
	}
	for i := range a.Types {
		if a.Types[i] != b.Types[i] {
			return false
		}
	}
	return true
}

// patchElems writes the destination's element type OID into every array
// value of the tuples (an array's binary form names its element type, and
// an enum's or a domain's OID differs between servers).
func patchElems(data []byte, elems []uint32) error {
	off := 0
	for off < len(data) {
		if len(data)-off < 2 {
			return fmt.Errorf("truncated tuple")
		}
		nf := int(binary.BigEndian.Uint16(data[off:]))
		if nf != len(elems) {
			return fmt.Errorf("tuple of %d fields, want %d", nf, len(elems))
		}
		off += 2
		for i := 0; i < nf; i++ {
			if len(data)-off < 4 {
				return fmt.Errorf("truncated tuple")
			}
			l := int(int32(binary.BigEndian.Uint32(data[off:])))
			off += 4
			if l <= 0 {
				continue
			}
			if len(data)-off < l {
				return fmt.Errorf("truncated tuple")
			}
			// ndim, has-nulls flag, element type OID.
			if elems[i] != 0 && l >= 12 {
				binary.BigEndian.PutUint32(data[off+8:], elems[i])
			}
			off += l
		}
	}
	return nil
}

// dropFields returns the tuples without the fields drop marks, in a new
// buffer: the batch's own tuples are written again on a retry.
func dropFields(data []byte, drop []bool) ([]byte, error) {
	out := make([]byte, 0, len(data))
	kept := 0
	for _, d := range drop {
		if !d {
			kept++
		}
	}
	off := 0
	for off < len(data) {
		if len(data)-off < 2 {
			return nil, fmt.Errorf("truncated tuple")
		}
		nf := int(binary.BigEndian.Uint16(data[off:]))
		if nf != len(drop) {
			return nil, fmt.Errorf("tuple of %d fields, want %d", nf, len(drop))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(kept))
		off += 2
		for i := 0; i < nf; i++ {
			if len(data)-off < 4 {
				return nil, fmt.Errorf("truncated tuple")
			}
			l := max(int(int32(binary.BigEndian.Uint32(data[off:]))), 0)
			if len(data)-off-4 < l {
				return nil, fmt.Errorf("truncated tuple")
			}
			if !drop[i] {
				out = append(out, data[off:off+4+l]...)
			}
			off += 4 + l
		}
	}
	return out, nil
}

// copyRaw writes a raw batch with COPY FROM STDIN (FORMAT binary) and its
// checkpoint in one transaction; into a staging table then upserted by key
// when upsert is set.
func (w *rowWriter) copyRaw(ctx context.Context, b *model.RowBatch, dt *dstTable, rt *rawTarget, upsert bool) error {
	if rt.elems != nil {
		if err := patchElems(b.Raw.Data, rt.elems); err != nil {
			return fmt.Errorf("table %s, partition %s: raw batch: %w", b.Table.Namespace, b.Partition, err)
		}
	}
	data := b.Raw.Data
	if rt.generated != nil {
		var err error
		if data, err = dropFields(data, rt.generated); err != nil {
			return fmt.Errorf("table %s, partition %s: raw batch: %w", b.Table.Namespace, b.Partition, err)
		}
	}
	conn := w.conn.Conn()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // reporting err
		return err
	}
	into := dt.name
	if upsert {
		if len(b.Table.PrimaryKey) == 0 {
			return fail(fmt.Errorf("table %s has no primary key to upsert by", b.Table.Namespace))
		}
		into = "pg_temp.ferry_stage"
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE ferry_stage (LIKE "+dt.name+") ON COMMIT DROP"); err != nil {
			return fail(err)
		}
	}
	r := io.MultiReader(strings.NewReader(copyHeader), bytes.NewReader(data), bytes.NewReader([]byte{0xff, 0xff}))
	if _, err := conn.PgConn().CopyFrom(ctx, r, "COPY "+into+" "+rt.copy); err != nil {
		return fail(err)
	}
	if upsert {
		if _, err := tx.Exec(ctx, stagedUpsertSQL(b.Table, dt.name, rt.generated)); err != nil {
			return fail(fmt.Errorf("upsert %d rows: %w", b.Raw.Rows, err))
		}
	}
	if err := saveCheckpoint(ctx, tx, b.Checkpoint); err != nil {
		return fail(err)
	}
	return tx.Commit(ctx)
}

// stagedUpsertSQL moves the staging table's rows into the table, the
// staged row winning over an existing one with the same key; the
// destination computes the generated columns.
func stagedUpsertSQL(t *model.Table, name string, generated []bool) string {
	inKey := map[string]bool{}
	keys := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		inKey[k] = true
		keys[i] = quoteIdent(k)
	}
	names := make([]string, 0, len(t.Columns))
	var sets []string
	for i, col := range t.Columns {
		if generated != nil && generated[i] {
			continue
		}
		name := quoteIdent(col.Name)
		names = append(names, name)
		if !inKey[col.Name] {
			sets = append(sets, name+" = EXCLUDED."+name)
		}
	}
	cols := strings.Join(names, ", ")
	sql := "INSERT INTO " + name + " (" + cols + ") OVERRIDING SYSTEM VALUE SELECT " + cols + " FROM pg_temp.ferry_stage ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
	if len(sets) == 0 {
		return sql + "NOTHING"
	}
	return sql + "UPDATE SET " + strings.Join(sets, ", ")
}

// writeRaw writes a pass-through batch like WriteRows writes decoded ones:
// COPY, and on a unique violation (rows already there) an upsert by key
// through a staging table, for this batch and the partition's next ones.
func (w *rowWriter) writeRaw(ctx context.Context, b *model.RowBatch, dt *dstTable, where string) error {
	rt, err := w.c.rawTarget(ctx, b.Table, b.Raw.Format)
	if err != nil {
		return err
	}
	if rt == nil {
		return fmt.Errorf("%s: raw batch in a format the table does not accept (%s)", where, b.Raw.Format.Name)
	}
	if w.upsertPart != b.Partition {
		w.upsertPart = ""
		err := w.copyRaw(ctx, b, dt, rt, false)
		if err == nil {
			return nil
		}
		if sqlState(err) != "23505" || len(b.Table.PrimaryKey) == 0 {
			return w.c.classify(err, where)
		}
		w.upsertPart = b.Partition
	}
	if err := w.copyRaw(ctx, b, dt, rt, true); err != nil {
		return w.c.classify(err, where)
	}
	return nil
}
