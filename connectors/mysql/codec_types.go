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
// columnType.

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

// quoteIdent quotes a MySQL identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteName quotes database.table.
func quoteName(ns model.Namespace) string {
	if ns.Schema == "" {
		return quoteIdent(ns.Table)
	}
	return quoteIdent(ns.Schema) + "." + quoteIdent(ns.Table)
}

// quoteString renders a string literal for a session with
// NO_BACKSLASH_ESCAPES, where only the quote needs doubling.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

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
