package mysql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// MySQL to canonical (discovery):
//
//	MySQL / MariaDB                      canonical          notes
//	tinyint(1), bool, boolean            bool               a value other than 0/1 is an error
//	tinyint, smallint, tinyint unsigned  int16
//	smallint unsigned, mediumint, int    int32              (mediumint unsigned too)
//	int unsigned, bigint                 int64
//	bigint unsigned                      decimal(20,0)
//	decimal(p,s), numeric                decimal(p,s)
//	float                                float32
//	double, real                         float64
//	char, varchar, *text                 text               Length = n for char/varchar
//	binary, varbinary, *blob             bytes              Length = n for binary/varbinary
//	bit(n)                               bytes              big-endian, (n+7)/8 bytes
//	json (and MariaDB's JSON alias)      json               MariaDB: longtext + CHECK json_valid
//	enum('a',...)                        enum               EnumValues = the labels
//	set('a',...)                         text               the labels, comma-separated, in definition order
//	date                                 date
//	time(n)                              time               outside 00:00:00-24:00:00 is an error
//	datetime(n)                          timestamp          wall clock, no zone
//	timestamp(n)                         timestamptz        read with time_zone '+00:00'
//	year                                 int16
//	uuid (MariaDB)                       uuid
//	inet4, inet6 (MariaDB)               inet
//	geometry and spatial types, vector   error naming table and column
//
// Canonical to MySQL (destination): Native when the source was MySQL (it
// parses as a MySQL type of the same canonical type), otherwise by kind; see
// columnType in destination_types.go.

// colType is a parsed MySQL column type, as information_schema's
// COLUMN_TYPE spells it: "int(10) unsigned", "enum('a','b')",
// "decimal(65,30)".
type colType struct {
	name     string   // lower case: "int", "varchar", "enum"
	args     []string // numbers, or enum/set labels (unquoted)
	unsigned bool
	zerofill bool
	// json marks a MariaDB JSON column: longtext with a json_valid check.
	json bool
}

// parseColType parses a MySQL column type. It refuses anything that is not
// a plain MySQL spelling ("character varying(20)", "timestamp with time
// zone"), which lets a destination tell a MySQL Native from another
// engine's.
func parseColType(s string) (colType, error) {
	orig := s
	// MariaDB marks old temporal formats: "datetime /* mariadb-5.3 */".
	if i := strings.Index(s, "/*"); i >= 0 {
		if j := strings.Index(s[i:], "*/"); j >= 0 {
			s = s[:i] + s[i+j+2:]
		}
	}
	s = strings.TrimSpace(s)
	var ct colType
	i := 0
	for i < len(s) && (isLetter(s[i]) || (i > 0 && s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	if i == 0 {
		return ct, fmt.Errorf("not a MySQL type: %q", orig)
	}
	ct.name = strings.ToLower(s[:i])
	rest := s[i:]
	if strings.HasPrefix(rest, "(") {
		args, n, err := parseTypeArgs(rest)
		if err != nil {
			return ct, fmt.Errorf("type %q: %w", orig, err)
		}
		ct.args = args
		rest = rest[n:]
	}
	for _, w := range strings.Fields(strings.ToLower(rest)) {
		switch w {
		case "unsigned":
			ct.unsigned = true
		case "zerofill":
			ct.zerofill = true
		case "signed":
		default:
			return ct, fmt.Errorf("not a MySQL type: %q", orig)
		}
	}
	switch ct.name {
	case "boolean", "bool":
		ct.name, ct.args = "tinyint", []string{"1"}
	case "integer":
		ct.name = "int"
	case "dec", "numeric", "fixed":
		ct.name = "decimal"
	case "real":
		ct.name = "double"
	}
	return ct, nil
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '_' }

// parseTypeArgs parses a parenthesized list of numbers or quoted labels (a
// quote inside a label is doubled) and returns the arguments
// and the number of bytes consumed.
func parseTypeArgs(s string) ([]string, int, error) {
	var args []string
	i := 1
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unterminated argument list")
		}
		if s[i] == '\'' {
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, 0, fmt.Errorf("unterminated label")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				if s[i] == '\\' && i+1 < len(s) {
					// information_schema does not escape with backslashes, but a
					// hand-written Native might.
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				b.WriteByte(s[i])
				i++
			}
			args = append(args, b.String())
		} else {
			j := i
			for j < len(s) && s[j] != ',' && s[j] != ')' {
				j++
			}
			a := strings.TrimSpace(s[i:j])
			if _, err := strconv.Atoi(a); err != nil {
				return nil, 0, fmt.Errorf("argument %q is not a number", a)
			}
			args = append(args, a)
			i = j
		}
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unterminated argument list")
		}
		switch s[i] {
		case ',':
			i++
		case ')':
			return args, i + 1, nil
		default:
			return nil, 0, fmt.Errorf("unexpected %q in argument list", s[i])
		}
	}
}

func (ct colType) intArg(i int) int {
	if i >= len(ct.args) {
		return 0
	}
	n, _ := strconv.Atoi(ct.args[i])
	return n
}

// String renders the type as MySQL accepts it in a column definition.
func (ct colType) String() string {
	if ct.json {
		return "json"
	}
	var b strings.Builder
	b.WriteString(ct.name)
	if len(ct.args) > 0 {
		b.WriteByte('(')
		for i, a := range ct.args {
			if i > 0 {
				b.WriteByte(',')
			}
			if ct.name == "enum" || ct.name == "set" {
				b.WriteString(quoteString(a))
			} else {
				b.WriteString(a)
			}
		}
		b.WriteByte(')')
	}
	if ct.unsigned {
		b.WriteString(" unsigned")
	}
	if ct.zerofill {
		b.WriteString(" zerofill")
	}
	return b.String()
}

// isLOB reports a type that cannot be a key without a prefix length.
func (ct colType) isLOB() bool {
	switch ct.name {
	case "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json":
		return true
	}
	return ct.json
}

// fsp is the fractional-seconds precision of a temporal type.
func (ct colType) fsp() int { return ct.intArg(0) }

// canonical maps a MySQL type to the canonical type.
func (ct colType) canonical() (model.Type, error) {
	t := model.Type{}
	switch ct.name {
	case "tinyint":
		if len(ct.args) == 1 && ct.args[0] == "1" && !ct.unsigned && !ct.zerofill {
			t.Kind = model.KindBool
		} else {
			t.Kind = model.KindInt16
		}
	case "smallint":
		t.Kind = model.KindInt16
		if ct.unsigned {
			t.Kind = model.KindInt32
		}
	case "mediumint":
		t.Kind = model.KindInt32
	case "int":
		t.Kind = model.KindInt32
		if ct.unsigned {
			t.Kind = model.KindInt64
		}
	case "bigint":
		t.Kind = model.KindInt64
		if ct.unsigned {
			t.Kind, t.Precision, t.Scale = model.KindDecimal, 20, 0
		}
	case "year":
		t.Kind = model.KindInt16
	case "decimal":
		t.Kind = model.KindDecimal
		t.Precision, t.Scale = 10, 0 // MySQL's default for a bare DECIMAL
		if len(ct.args) > 0 {
			t.Precision, t.Scale = ct.intArg(0), ct.intArg(1)
		}
	case "float":
		t.Kind = model.KindFloat32
	case "double":
		t.Kind = model.KindFloat64
	case "char", "varchar":
		t.Kind = model.KindText
		t.Length = ct.intArg(0)
	case "tinytext", "text", "mediumtext", "longtext":
		t.Kind = model.KindText
		if ct.json {
			t.Kind = model.KindJSON
		}
	case "binary", "varbinary":
		t.Kind = model.KindBytes
		t.Length = ct.intArg(0)
	case "tinyblob", "blob", "mediumblob", "longblob":
		t.Kind = model.KindBytes
	case "bit":
		t.Kind = model.KindBytes
		n := 1
		if len(ct.args) > 0 {
			n = ct.intArg(0)
		}
		t.Length = (n + 7) / 8
	case "json":
		t.Kind = model.KindJSON
	case "enum":
		t.Kind = model.KindEnum
		t.EnumValues = append([]string(nil), ct.args...)
	case "set":
		t.Kind = model.KindText
	case "date":
		t.Kind = model.KindDate
	case "time":
		t.Kind = model.KindTime
	case "datetime":
		t.Kind = model.KindTimestamp
	case "timestamp":
		t.Kind = model.KindTimestampTZ
	case "uuid":
		t.Kind = model.KindUUID
	case "inet4", "inet6":
		t.Kind = model.KindInet
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		return t, fmt.Errorf("spatial type %s is not supported (ferry has no canonical geometry type); exclude the table with --tables '!name' or convert the column (for example to its WKB with ST_AsBinary in a view)", ct.name)
	default:
		return t, fmt.Errorf("type %s is not supported", ct.name)
	}
	t.Native = ct.String()
	return t, nil
}
