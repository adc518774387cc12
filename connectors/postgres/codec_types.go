package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrydb/ferry/model"
)

// Built-in type OIDs ferry maps to canonical kinds.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidMoney       = 790
	oidMacaddr     = 829
	oidInet        = 869
	oidCIDR        = 650
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// pgType is what ferry knows of a type from pg_type.
type pgType struct {
	oid        uint32
	schema     string
	name       string
	typtype    byte // b base, c composite, d domain, e enum, p pseudo, r range, m multirange
	elem       uint32
	isArray    bool // the array type of elem (not int2vector and friends)
	base       uint32
	baseMod    int32
	baseNative string // format_type of a domain's base type
	enumLabel  []string
}

// typeCache loads types from the catalog once per connector.
type typeCache struct {
	mu    sync.Mutex
	types map[uint32]*pgType
}

func newTypeCache() *typeCache { return &typeCache{types: map[uint32]*pgType{}} }

// load makes sure every type in oids, and every type they refer to (array
// elements, domain bases), is in the cache.
func (tc *typeCache) load(ctx context.Context, pool *pgxpool.Pool, oids []uint32) error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	want := oids
	for len(want) > 0 {
		var missing []uint32
		seen := map[uint32]bool{}
		for _, o := range want {
			if _, ok := tc.types[o]; !ok && !seen[o] && o != 0 {
				missing = append(missing, o)
				seen[o] = true
			}
		}
		if len(missing) == 0 {
			return nil
		}
		rows, err := pool.Query(ctx, `SELECT t.oid, n.nspname, t.typname, t.typtype, t.typelem,
				COALESCE(e.typarray = t.oid, false), t.typbasetype, t.typtypmod,
				CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, NULLIF(t.typtypmod, -1)) ELSE '' END
			FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
			LEFT JOIN pg_type e ON e.oid = t.typelem
			WHERE t.oid = ANY($1)`, missing)
		if err != nil {
			return fmt.Errorf("read types: %w", err)
		}
		var next []uint32
		var enums []uint32
		for rows.Next() {
			t := &pgType{}
			var typtype string
			if err := rows.Scan(&t.oid, &t.schema, &t.name, &typtype, &t.elem, &t.isArray, &t.base, &t.baseMod, &t.baseNative); err != nil {
				rows.Close()
				return fmt.Errorf("read types: %w", err)
			}
			t.typtype = typtype[0]
			tc.types[t.oid] = t
			if t.isArray {
				next = append(next, t.elem)
			}
			if t.typtype == 'd' {
				next = append(next, t.base)
			}
			if t.typtype == 'e' {
				enums = append(enums, t.oid)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read types: %w", err)
		}
		if len(enums) > 0 {
			rows, err := pool.Query(ctx, `SELECT enumtypid, enumlabel FROM pg_enum WHERE enumtypid = ANY($1) ORDER BY enumtypid, enumsortorder`, enums)
			if err != nil {
				return fmt.Errorf("read enum labels: %w", err)
			}
			for rows.Next() {
				var oid uint32
				var label string
				if err := rows.Scan(&oid, &label); err != nil {
					rows.Close()
					return fmt.Errorf("read enum labels: %w", err)
				}
				tc.types[oid].enumLabel = append(tc.types[oid].enumLabel, label)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read enum labels: %w", err)
			}
		}
		for _, o := range missing {
			if _, ok := tc.types[o]; !ok {
				return fmt.Errorf("type %d does not exist", o)
			}
		}
		want = next
	}
	return nil
}

// colType is a source column's type: its canonical type and how to decode
// its text form.
type colType struct {
	typ    model.Type
	decode decoder
	// fallback: the type has no canonical kind and travels as its text.
	fallback bool
}

// mapType maps a loaded type (with its modifier) to a canonical type.
// native is the column's format_type spelling. Types without a canonical
// kind travel as text through their output and input functions, which
// round-trip exactly between PostgreSQL servers; pseudo-types are refused.
func (tc *typeCache) mapType(oid uint32, typmod int32, native string) (colType, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.mapLocked(oid, typmod, native)
}

func (tc *typeCache) mapLocked(oid uint32, typmod int32, native string) (colType, error) {
	t := tc.types[oid]
	if t == nil {
		return colType{}, fmt.Errorf("type %d not loaded", oid)
	}
	if t.typtype == 'd' {
		// A domain travels as its base type; its constraints stay at the
		// source.
		mod := t.baseMod
		if mod < 0 {
			mod = typmod
		}
		ct, err := tc.mapLocked(t.base, mod, t.baseNative)
		if err != nil {
			return colType{}, fmt.Errorf("domain %s.%s: %w", t.schema, t.name, err)
		}
		return ct, nil
	}
	if t.isArray {
		et, err := tc.mapLocked(t.elem, typmod, elemNative(native))
		if err != nil {
			return colType{}, err
		}
		if et.fallback || et.typ.Kind == model.KindArray {
			// Arrays of types without a canonical kind travel whole as text.
			return colType{typ: model.Type{Kind: model.KindText, Native: native, TextForm: true}, decode: decodeText, fallback: true}, nil
		}
		elem := et.typ
		typ := model.Type{Kind: model.KindArray, Elem: &elem, Native: native}
		if elem.Kind == model.KindEnum {
			typ.Native = elem.Native + "[]"
		}
		return colType{typ: typ, decode: arrayDecoder(et.decode)}, nil
	}
	if t.typtype == 'e' {
		return colType{typ: model.Type{Kind: model.KindEnum, EnumValues: append([]string(nil), t.enumLabel...), Native: quoteIdent(t.schema) + "." + quoteIdent(t.name)}, decode: decodeText}, nil
	}
	typ := model.Type{Native: native}
	var dec decoder
	switch oid {
	case oidBool:
		typ.Kind, dec = model.KindBool, decodeBool
	case oidInt2:
		typ.Kind, dec = model.KindInt16, decodeInt
	case oidInt4:
		typ.Kind, dec = model.KindInt32, decodeInt
	case oidInt8, oidOID:
		typ.Kind, dec = model.KindInt64, decodeInt
	case oidFloat4:
		typ.Kind, dec = model.KindFloat32, decodeFloat32
	case oidFloat8:
		typ.Kind, dec = model.KindFloat64, decodeFloat64
	case oidNumeric:
		typ.Kind, dec = model.KindDecimal, decodeText
		if typmod >= 4 {
			typ.Precision = int(((typmod - 4) >> 16) & 0xffff)
			typ.Scale = int((((typmod - 4) & 0x7ff) ^ 1024) - 1024)
		}
	case oidMoney:
		typ.Kind, dec = model.KindDecimal, decodeMoney
	case oidText, oidName, oidChar:
		typ.Kind, dec = model.KindText, decodeText
	case oidVarchar, oidBpchar:
		typ.Kind, dec = model.KindText, decodeText
		if typmod >= 4 {
			typ.Length = int(typmod - 4)
		}
	case oidBytea:
		typ.Kind, dec = model.KindBytes, decodeBytea
	case oidJSON, oidJSONB:
		typ.Kind, dec = model.KindJSON, decodeText
	case oidUUID:
		typ.Kind, dec = model.KindUUID, decodeText
	case oidDate:
		typ.Kind, dec = model.KindDate, decodeDate
	case oidTime:
		typ.Kind, dec = model.KindTime, decodeTime
	case oidTimetz:
		typ.Kind, dec = model.KindTimeTZ, decodeTimeTZ
	case oidTimestamp:
		typ.Kind, dec = model.KindTimestamp, decodeTimestamp
	case oidTimestamptz:
		typ.Kind, dec = model.KindTimestampTZ, decodeTimestampTZ
	case oidInterval:
		typ.Kind, dec = model.KindInterval, decodeInterval
	case oidInet:
		typ.Kind, dec = model.KindInet, decodeText
	case oidCIDR:
		typ.Kind, dec = model.KindCIDR, decodeText
	case oidMacaddr:
		typ.Kind, dec = model.KindMACAddr, decodeText
	default:
		if t.typtype == 'p' {
			return colType{}, fmt.Errorf("type %s cannot be copied (pseudo-type)", native)
		}
		// Everything else (bit strings, geometric types, ranges, tsvector,
		// xml, composite types, extension types): its text form.
		return colType{typ: model.Type{Kind: model.KindText, Native: native, TextForm: true}, decode: decodeText, fallback: true}, nil
	}
	return colType{typ: typ, decode: dec}, nil
}

// elemNative strips one "[]" from an array type's spelling.
func elemNative(native string) string {
	if len(native) > 2 && native[len(native)-2:] == "[]" {
		return native[:len(native)-2]
	}
	return native
}
