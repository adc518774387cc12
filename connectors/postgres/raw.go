package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Pass-through: between two PostgreSQL servers a table whose columns have
// the same types on both sides travels as COPY binary tuples, never decoded
// into model values. The source reads COPY (SELECT ctid, cols ...) TO STDOUT
// (FORMAT binary), strips the ctid of each tuple (it becomes the batch's
// cursor) and hands on the rest; the destination frames the tuples with a
// header and a trailer and sends them to COPY FROM STDIN (FORMAT binary).

// rawFormatName names the payload of RowBatch.Raw this connector makes and
// takes: COPY binary tuples, without the file header and trailer.
const rawFormatName = "postgres-binary-copy"

// copyHeader starts a binary COPY stream: signature, flags, no extension.
const copyHeader = "PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"

var (
	_ connector.RawReader = (*Conn)(nil)
	_ connector.RawWriter = (*Conn)(nil)
)

// firstNormalOID is FirstNormalObjectId: types below it are built in, so
// their binary form is the same on every server of a major version range.
const firstNormalOID = 16384

// wireColumn is a column's type as its binary form goes: sig spells it the
// same way on every server ("integer", "numeric(12,2)[]", "enum public.mood");
// elem is, for an array, the element type OID its values carry, which
// differs between servers for enums and domains and is rewritten in flight.
type wireColumn struct {
	sig       string
	elem      uint32
	generated bool
}

type pgTypeRow struct {
	typtype byte
	base    uint32
	mod     int32
	elem    uint32
	length  int16
	array   uint32
	schema  string
	name    string
}

// wireColumns reads the binary-form type of the named columns of table ns;
// ok is false when a column is missing or has a type whose binary form may
// differ between servers (composite, extension and other user types, arrays
// of them).
func wireColumns(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}, rel string, names []string) ([]wireColumn, bool, error) {
	rows, err := q.Query(ctx, `SELECT a.attname, a.atttypid, a.atttypmod, a.attgenerated <> ''
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, rel)
	if err != nil {
		return nil, false, err
	}
	type att struct {
		oid uint32
		mod int32
		gen bool
	}
	atts := map[string]att{}
	for rows.Next() {
		var name string
		var a att
		if err := rows.Scan(&name, &a.oid, &a.mod, &a.gen); err != nil {
			rows.Close()
			return nil, false, err
		}
		atts[name] = a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	types := map[uint32]*pgTypeRow{}
	get := func(oid uint32) (*pgTypeRow, error) {
		if t := types[oid]; t != nil {
			return t, nil
		}
		var t pgTypeRow
		var typtype string
		err := q.QueryRow(ctx, `SELECT t.typtype::text, t.typbasetype, t.typtypmod, t.typelem, t.typlen, COALESCE(e.typarray, 0), n.nspname, t.typname
			FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_type e ON e.oid = t.typelem
			WHERE t.oid = $1`, oid).Scan(&typtype, &t.base, &t.mod, &t.elem, &t.length, &t.array, &t.schema, &t.name)
		if err != nil {
			return nil, err
		}
		t.typtype = typtype[0]
		types[oid] = &t
		return &t, nil
	}
	// resolve follows domains to their base type: a domain's binary form
	// is its base type's.
	resolve := func(oid uint32, mod int32) (uint32, int32, *pgTypeRow, error) {
		for range 32 {
			t, err := get(oid)
			if err != nil {
				return 0, 0, nil, err
			}
			if t.typtype != 'd' {
				return oid, mod, t, nil
			}
			if t.mod != -1 {
				mod = t.mod
			}
			oid = t.base
		}
		return 0, 0, nil, fmt.Errorf("type %d: domains nested too deep", oid)
	}
	scalar := func(oid uint32, mod int32, t *pgTypeRow) (string, bool, error) {
		switch {
		case t.typtype == 'e':
			return "enum " + quoteIdent(t.schema) + "." + quoteIdent(t.name), true, nil
		case oid < firstNormalOID && (t.typtype == 'b' || t.typtype == 'r' || t.typtype == 'm'):
			var s string
			if err := q.QueryRow(ctx, `SELECT format_type($1, $2)`, oid, mod).Scan(&s); err != nil {
				return "", false, err
			}
			return s, true, nil
		}
		return "", false, nil
	}
	out := make([]wireColumn, len(names))
	for i, name := range names {
		a, found := atts[name]
		if !found {
			return nil, false, nil
		}
		oid, mod, t, err := resolve(a.oid, a.mod)
		if err != nil {
			return nil, false, err
		}
		out[i].generated = a.gen
		if t.length == -1 && t.elem != 0 && t.array == oid {
			// An array: its values name their element type by OID.
			eoid, emod, et, err := resolve(t.elem, mod)
			if err != nil {
				return nil, false, err
			}
			sig, ok, err := scalar(eoid, emod, et)
			if err != nil || !ok {
				return nil, false, err
			}
			out[i].sig, out[i].elem = sig+"[]", t.elem
			continue
		}
		sig, ok, err := scalar(oid, mod, t)
		if err != nil || !ok {
			return nil, false, err
		}
		out[i].sig = sig
	}
	return out, true, nil
}

// RawFormat offers t's rows as COPY binary tuples when every column's type
// has a binary form another PostgreSQL server reads the same way.
func (c *Conn) RawFormat(ctx context.Context, t *model.Table) (*model.RawFormat, bool, error) {
	names := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		names[i] = col.Name
	}
	cols, ok, err := wireColumns(ctx, c.pool, qualified(t.Namespace), names)
	if err != nil {
		return nil, false, c.classify(err, "read column types of "+t.Namespace.String())
	}
	if !ok {
		return nil, false, nil
	}
	f := &model.RawFormat{Name: rawFormatName, Columns: names, Types: make([]string, len(cols))}
	for i, col := range cols {
		f.Types[i] = col.sig
	}
	return f, true, nil
}

// rawTarget is how a destination table takes a raw format: the COPY
// statement, and the element OID to write into each array column's values
// (0 for the other columns; nil when there is no array column).
type rawTarget struct {
	format *model.RawFormat
	copy   string
	elems  []uint32
}

// AcceptsRaw accepts the format when t exists here with exactly the
// format's columns and types, none of them generated: the tuples are then
// stored as they are.
func (c *Conn) AcceptsRaw(ctx context.Context, t *model.Table, f *model.RawFormat) (bool, error) {
	rt, err := c.rawTarget(ctx, t, f)
	return rt != nil, err
}

func (c *Conn) rawTarget(ctx context.Context, t *model.Table, f *model.RawFormat) (*rawTarget, error) {
	if f == nil || f.Name != rawFormatName || len(f.Columns) != len(f.Types) || len(f.Columns) != len(t.Columns) {
		return nil, nil
	}
	key := qualified(t.Namespace)
	c.dstMu.Lock()
	rt := c.rawTargets[key]
	c.dstMu.Unlock()
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
	names := make([]string, len(cols))
	for i, col := range cols {
		if col.generated || col.sig != f.Types[i] {
			return nil, nil
		}
		names[i] = quoteIdent(f.Columns[i])
		if col.elem != 0 {
			if rt.elems == nil {
				rt.elems = make([]uint32, len(cols))
			}
			rt.elems[i] = col.elem
		}
	}
	rt.copy = "(" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary)"
	c.dstMu.Lock()
	if c.rawTargets == nil {
		c.rawTargets = map[string]*rawTarget{}
	}
	c.rawTargets[key] = rt
	c.dstMu.Unlock()
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

// ReadPartitionRaw reads the partition like ReadPartition, as COPY binary
// tuples.
func (c *Conn) ReadPartitionRaw(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, f *model.RawFormat, emit func(*model.RowBatch) error) error {
	if f == nil || f.Name != rawFormatName || len(f.Columns) != len(t.Columns) {
		return fmt.Errorf("table %s: raw format %v is not this connector's", t.Namespace, f)
	}
	q, rel, err := partitionQuery(t, p, from, true)
	if err != nil {
		return err
	}
	// The types were negotiated when the copy started and must still be
	// those: COPY sends the current types whatever the snapshot, so they are
	// read outside it (before the read takes its connection, so a lane never
	// holds two of the pool's).
	cols, ok, err := wireColumns(ctx, c.pool, rel, f.Columns)
	if err != nil {
		return c.classify(err, "read partition "+p.ID)
	}
	for i := range f.Types {
		if !ok || cols[i].sig != f.Types[i] {
			return fmt.Errorf("table %s, column %s: its type changed since the copy started; run again (or start the flow over with --restart)", t.Namespace, f.Columns[i])
		}
	}
	batchRows := int(c.batchRows.Load())
	if batchRows <= 0 {
		batchRows = defaultBatchRows
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return c.classify(err, "read partition "+p.ID)
	}
	defer conn.Release()
	tx, err := c.beginRead(ctx, conn.Conn())
	if err != nil {
		return c.classify(err, "read partition "+p.ID)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only; ends the transaction whatever happened
	s := &tupleSplitter{format: f, batchRows: batchRows, emit: emit, where: fmt.Sprintf("partition %s of %s", p.ID, t.Namespace)}
	_, err = conn.Conn().PgConn().CopyTo(ctx, s, "COPY ("+q+") TO STDOUT (FORMAT binary)")
	if s.err != nil {
		return s.err // the emit or framing error, not the closed connection it caused
	}
	if err != nil {
		return c.classify(err, fmt.Sprintf("read partition %s of %s", p.ID, t.Namespace))
	}
	if !s.ended {
		return fmt.Errorf("%s: COPY stream ended without its trailer", s.where)
	}
	return s.flush()
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

// tupleSplitter is the io.Writer a COPY TO STDOUT (FORMAT binary) of
// (ctid, columns...) writes into: it cuts the stream into tuples, takes
// each tuple's ctid off as the cursor, and emits batches of the rest.
type tupleSplitter struct {
	format    *model.RawFormat
	batchRows int
	emit      func(*model.RowBatch) error
	where     string

	pending []byte // an incomplete tuple (or header) carried to the next Write
	header  bool   // the header was read
	ended   bool   // the trailer was read
	err     error

	data    []byte
	rows    int
	last    tid
	started bool
}

func (s *tupleSplitter) Write(p []byte) (int, error) {
	n := len(p)
	if s.err != nil {
		return 0, s.err
	}
	if len(s.pending) > 0 {
		s.pending = append(s.pending, p...)
		p = s.pending
	}
	used, err := s.split(p)
	if err != nil {
		s.err = err
		return 0, err
	}
	rest := p[used:]
	if len(rest) == 0 {
		s.pending = s.pending[:0]
	} else {
		// Copy before p is reused; rest may alias s.pending.
		s.pending = append(s.pending[:0:0], rest...)
	}
	return n, nil
}

// split consumes every complete unit (header, tuple, trailer) at the start
// of p and returns how many bytes it used.
func (s *tupleSplitter) split(p []byte) (int, error) {
	off := 0
	if !s.header {
		if len(p) < 19 {
			return 0, nil
		}
		if string(p[:11]) != copyHeader[:11] {
			return 0, fmt.Errorf("%s: not a binary COPY stream", s.where)
		}
		ext := int(binary.BigEndian.Uint32(p[15:19]))
		if len(p) < 19+ext {
			return 0, nil
		}
		off = 19 + ext
		s.header = true
	}
	want := len(s.format.Columns) + 1
	for off < len(p) {
		if s.ended {
			return 0, fmt.Errorf("%s: data after the COPY trailer", s.where)
		}
		if len(p)-off < 2 {
			break
		}
		nf := int(int16(binary.BigEndian.Uint16(p[off:])))
		if nf == -1 {
			s.ended = true
			off += 2
			continue
		}
		if nf != want {
			return 0, fmt.Errorf("%s: COPY tuple of %d fields, want %d", s.where, nf, want)
		}
		// The ctid: length 6, block number (4 bytes), offset (2 bytes).
		pos := off + 2
		if len(p)-pos < 10 {
			break
		}
		if binary.BigEndian.Uint32(p[pos:]) != 6 {
			return 0, fmt.Errorf("%s: COPY tuple without its ctid", s.where)
		}
		cur := tid{int64(binary.BigEndian.Uint32(p[pos+4:])), int64(binary.BigEndian.Uint16(p[pos+8:]))}
		pos += 10
		body := pos
		complete := true
		for i := 1; i < nf; i++ {
			if len(p)-pos < 4 {
				complete = false
				break
			}
			l := int(int32(binary.BigEndian.Uint32(p[pos:])))
			pos += 4
			if l > 0 {
				if len(p)-pos < l {
					complete = false
					break
				}
				pos += l
			}
		}
		if !complete {
			break
		}
		if s.started && !s.last.less(cur) {
			return 0, fmt.Errorf("%s: rows came out of physical order (%v after %v); ferry's cursor needs a TID range or sequential scan", s.where, cur, s.last)
		}
		if s.data == nil {
			s.data = make([]byte, 0, min(maxBatchBytes+64<<10, max(64<<10, 2*(pos-off)*s.batchRows)))
		}
		s.data = binary.BigEndian.AppendUint16(s.data, uint16(nf-1))
		s.data = append(s.data, p[body:pos]...)
		s.rows++
		s.last, s.started = cur, true
		off = pos
		if s.rows >= s.batchRows || len(s.data) >= maxBatchBytes {
			if err := s.flush(); err != nil {
				return 0, err
			}
		}
	}
	return off, nil
}

// flush emits the batch being built, if any.
func (s *tupleSplitter) flush() error {
	if s.rows == 0 {
		return nil
	}
	b := &model.RowBatch{
		Raw:    &model.RawRows{Format: s.format, Data: s.data, Rows: s.rows},
		Cursor: model.Cursor("(" + strconv.FormatInt(s.last.block, 10) + "," + strconv.FormatInt(s.last.offset, 10) + ")"),
		Bytes:  int64(len(s.data)),
	}
	s.data, s.rows = nil, 0
	return s.emit(b)
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

// copyRaw writes a raw batch with COPY FROM STDIN (FORMAT binary) and its
// checkpoint in one transaction; into a staging table then upserted by key
// when upsert is set.
func (w *rowWriter) copyRaw(ctx context.Context, b *model.RowBatch, dt *dstTable, rt *rawTarget, upsert bool) error {
	if rt.elems != nil {
		if err := patchElems(b.Raw.Data, rt.elems); err != nil {
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
	r := io.MultiReader(strings.NewReader(copyHeader), bytes.NewReader(b.Raw.Data), bytes.NewReader([]byte{0xff, 0xff}))
	if _, err := conn.PgConn().CopyFrom(ctx, r, "COPY "+into+" "+rt.copy); err != nil {
		return fail(err)
	}
	if upsert {
		if _, err := tx.Exec(ctx, stagedUpsertSQL(b.Table, dt.name)); err != nil {
			return fail(fmt.Errorf("upsert %d rows: %w", b.Raw.Rows, err))
		}
	}
	if err := saveCheckpoint(ctx, tx, b.Checkpoint); err != nil {
		return fail(err)
	}
	return tx.Commit(ctx)
}

// stagedUpsertSQL moves the staging table's rows into the table, the
// staged row winning over an existing one with the same key.
func stagedUpsertSQL(t *model.Table, name string) string {
	inKey := map[string]bool{}
	keys := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		inKey[k] = true
		keys[i] = quoteIdent(k)
	}
	names := make([]string, len(t.Columns))
	var sets []string
	for i, col := range t.Columns {
		names[i] = quoteIdent(col.Name)
		if !inKey[col.Name] {
			sets = append(sets, names[i]+" = EXCLUDED."+names[i])
		}
	}
	cols := strings.Join(names, ", ")
	sql := "INSERT INTO " + name + " (" + cols + ") OVERRIDING SYSTEM VALUE SELECT " + cols + " FROM pg_temp.ferry_stage ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
	if len(sets) == 0 {
		return sql + "NOTHING"
	}
	return sql + "UPDATE SET " + strings.Join(sets, ", ")
}
