package mysql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// Widest key types: InnoDB limits an index entry to 3072 bytes, and a
// utf8mb4 character takes up to 4.
const (
	maxKeyChars = 768
	maxKeyBytes = 3072
	// maxVarchar is the longest text a non-key column gets as varchar; longer
	// or unbounded text becomes longtext (a row holds at most 65535 bytes).
	maxVarchar = 1024
)

// columnType chooses the MySQL type of a destination column: the source's
// Native spelling when the source was MySQL, else a mapping by kind.
//
//	canonical        MySQL                         notes
//	bool             tinyint(1)
//	int16/32/64      smallint / int / bigint
//	decimal(p,s)     decimal(p,s)                  p <= 65, s <= 30; unconstrained: decimal(65,30), a value that does not fit is an error
//	float32/64       float / double                NaN and infinities are an error (MySQL has none)
//	text             varchar(n) or longtext        varchar(n) for n <= 1024; a key: varchar(n), varchar(768) when unbounded
//	bytes            varbinary(n) or longblob      a key: varbinary(n), varbinary(3072) when unbounded
//	json             json
//	uuid             char(36)                      lower-case text
//	date             date
//	time             time(6)
//	timetz           varchar(32)                   ferry's text form 15:04:05.999999+05:30
//	timestamp        datetime(6)
//	timestamptz      datetime(6)                   the UTC wall clock (TIMESTAMP only spans 1970-2038)
//	interval         varchar(64)                   ferry's text form P<months>M<days>DT<seconds>S
//	array            json                          a JSON array
//	enum             enum(labels) or varchar(255)  varchar when the labels are unknown
//	inet/cidr        varchar(43)
//	macaddr          varchar(23)
func columnType(t model.Type, key bool) (colType, error) {
	if t.Native != "" {
		if ct, err := parseColType(t.Native); err == nil && nativeFits(ct, t, key) {
			return ct, nil
		}
	}
	switch t.Kind {
	case model.KindBool:
		return colType{name: "tinyint", args: []string{"1"}}, nil
	case model.KindInt16:
		return colType{name: "smallint"}, nil
	case model.KindInt32:
		return colType{name: "int"}, nil
	case model.KindInt64:
		return colType{name: "bigint"}, nil
	case model.KindDecimal:
		p, s := t.Precision, t.Scale
		if p == 0 {
			p, s = 65, 30
		}
		if p > 65 || s > 30 || s > p {
			return colType{}, fmt.Errorf("decimal(%d,%d) does not fit MySQL's DECIMAL (at most 65 digits, 30 after the point)", t.Precision, t.Scale)
		}
		return colType{name: "decimal", args: []string{strconv.Itoa(p), strconv.Itoa(s)}}, nil
	case model.KindFloat32:
		return colType{name: "float"}, nil
	case model.KindFloat64:
		return colType{name: "double"}, nil
	case model.KindText:
		switch {
		case key && t.Length > 0:
			return colType{name: "varchar", args: []string{strconv.Itoa(t.Length)}}, nil
		case key:
			return colType{name: "varchar", args: []string{strconv.Itoa(maxKeyChars)}}, nil
		case t.Length > 0 && t.Length <= maxVarchar:
			return colType{name: "varchar", args: []string{strconv.Itoa(t.Length)}}, nil
		}
		return colType{name: "longtext"}, nil
	case model.KindBytes:
		switch {
		case key && t.Length > 0:
			return colType{name: "varbinary", args: []string{strconv.Itoa(t.Length)}}, nil
		case key:
			return colType{name: "varbinary", args: []string{strconv.Itoa(maxKeyBytes)}}, nil
		case t.Length > 0 && t.Length <= maxVarchar:
			return colType{name: "varbinary", args: []string{strconv.Itoa(t.Length)}}, nil
		}
		return colType{name: "longblob"}, nil
	case model.KindJSON, model.KindArray:
		if key {
			return colType{}, fmt.Errorf("a %s column cannot be part of a MySQL primary key", t)
		}
		return colType{name: "json"}, nil
	case model.KindUUID:
		return colType{name: "char", args: []string{"36"}}, nil
	case model.KindDate:
		return colType{name: "date"}, nil
	case model.KindTime:
		return colType{name: "time", args: []string{"6"}}, nil
	case model.KindTimeTZ:
		return colType{name: "varchar", args: []string{"32"}}, nil
	case model.KindTimestamp, model.KindTimestampTZ:
		return colType{name: "datetime", args: []string{"6"}}, nil
	case model.KindInterval:
		return colType{name: "varchar", args: []string{"64"}}, nil
	case model.KindEnum:
		if len(t.EnumValues) > 0 {
			return colType{name: "enum", args: append([]string(nil), t.EnumValues...)}, nil
		}
		return colType{name: "varchar", args: []string{"255"}}, nil
	case model.KindInet, model.KindCIDR:
		return colType{name: "varchar", args: []string{"43"}}, nil
	case model.KindMACAddr:
		return colType{name: "varchar", args: []string{"23"}}, nil
	}
	return colType{}, fmt.Errorf("type %s has no MySQL mapping", t)
}

// nativeFits says whether a Native spelling that parses as a MySQL type can
// hold the canonical type exactly. Names other engines share with MySQL but
// with other limits ("text" and "blob" are 64 KiB in MySQL) are not trusted.
func nativeFits(ct colType, t model.Type, key bool) bool {
	switch ct.name {
	case "text", "blob":
		return false
	case "uuid":
		// PostgreSQL spells its uuid the same, but MariaDB's UUID type refuses
		// some of its values (it checks their version and variant bits) and
		// MySQL has no such type: char(36) holds every one.
		return false
	}
	if key && ct.isLOB() {
		return false
	}
	c, err := ct.canonical()
	if err != nil || c.Kind != t.Kind {
		return false
	}
	switch t.Kind {
	case model.KindDecimal:
		return c.Precision == t.Precision && c.Scale == t.Scale
	case model.KindEnum:
		return strings.Join(c.EnumValues, "\x00") == strings.Join(t.EnumValues, "\x00")
	case model.KindText, model.KindBytes:
		return c.Length == t.Length
	}
	return true
}

// compatible says whether values of canonical type src can be written into
// an existing destination column of type dst without changing them.
func compatible(src model.Type, dst colType) bool {
	d, err := dst.canonical()
	if err != nil {
		return false
	}
	if d.Kind == src.Kind {
		return true
	}
	switch src.Kind {
	case model.KindUUID, model.KindTimeTZ, model.KindInterval, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		return d.Kind == model.KindText
	case model.KindArray:
		return d.Kind == model.KindJSON || d.Kind == model.KindText
	case model.KindTimestampTZ:
		return d.Kind == model.KindTimestamp // datetime holding UTC
	case model.KindInt16:
		return d.Kind == model.KindInt32 || d.Kind == model.KindInt64
	case model.KindInt32:
		return d.Kind == model.KindInt64
	case model.KindJSON:
		return d.Kind == model.KindText
	}
	return false
}

// tableColumnTypes chooses every column's type. Unbounded text and bytes
// key columns share what the other key columns leave of InnoDB's 3072-byte
// limit on an index entry.
func tableColumnTypes(t *model.Table) ([]colType, error) {
	out := make([]colType, len(t.Columns))
	var flexible []int
	used := 0
	for i, col := range t.Columns {
		key := inKey(t, col.Name)
		ct, err := columnType(col.Type, key)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		out[i] = ct
		if !key {
			continue
		}
		if (col.Type.Kind == model.KindText || col.Type.Kind == model.KindBytes) && col.Type.Length == 0 {
			flexible = append(flexible, i)
			continue
		}
		used += keyBytes(ct)
	}
	if len(flexible) > 0 {
		left := (maxKeyBytes - used) / len(flexible)
		for _, i := range flexible {
			n := left
			if t.Columns[i].Type.Kind == model.KindText {
				n = left / 4
			}
			if n < 1 {
				return nil, fmt.Errorf("column %s: the primary key's other columns leave no room in InnoDB's 3072-byte key for it", t.Columns[i].Name)
			}
			out[i].args = []string{strconv.Itoa(n)}
		}
	}
	return out, nil
}

// keyBytes is the most bytes a value of ct takes in an index entry.
func keyBytes(ct colType) int {
	switch ct.name {
	case "char", "varchar":
		return 4 * ct.intArg(0)
	case "binary", "varbinary":
		return ct.intArg(0)
	case "decimal":
		return ct.intArg(0)/2 + 1
	case "uuid", "inet6":
		return 16
	}
	return 8
}

func inKey(t *model.Table, col string) bool {
	for _, k := range t.PrimaryKey {
		if k == col {
			return true
		}
	}
	return false
}
