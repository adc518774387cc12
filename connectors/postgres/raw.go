package postgres

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/connector"
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
func wireColumns(ctx context.Context, q querier, rel string, names []string) ([]wireColumn, bool, error) {
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
