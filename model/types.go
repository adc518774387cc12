package model

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Kind is a canonical column type. The comment on each kind gives the Go type
// its values have inside a Row. NULL is always a nil interface.
type Kind uint8

const (
	KindUnknown     Kind = iota
	KindBool             // bool
	KindInt16            // int64
	KindInt32            // int64
	KindInt64            // int64
	KindDecimal          // string, exact decimal text ("-12.50"); Precision/Scale when known
	KindFloat32          // float64 (holding a float32 value exactly)
	KindFloat64          // float64
	KindText             // string (valid UTF-8 where the source guarantees it)
	KindBytes            // []byte
	KindJSON             // string holding a JSON document
	KindUUID             // string, lower-case 8-4-4-4-12
	KindDate             // time.Time at 00:00 UTC, or Infinity
	KindTime             // time.Duration since midnight
	KindTimeTZ           // TimeTZ
	KindTimestamp        // time.Time in UTC holding the wall-clock time (no zone), or Infinity
	KindTimestampTZ      // time.Time in UTC holding the instant, or Infinity
	KindInterval         // Interval
	KindArray            // []any of Elem's kind; a multi-dimensional array's elements are []any sub-arrays
	KindEnum             // string (the label)
	KindInet             // string ("10.0.0.1/32" or "10.0.0.1")
	KindCIDR             // string
	KindMACAddr          // string
)

var kindNames = [...]string{
	KindUnknown: "unknown", KindBool: "bool", KindInt16: "int16", KindInt32: "int32",
	KindInt64: "int64", KindDecimal: "decimal", KindFloat32: "float32", KindFloat64: "float64",
	KindText: "text", KindBytes: "bytes", KindJSON: "json", KindUUID: "uuid", KindDate: "date",
	KindTime: "time", KindTimeTZ: "timetz", KindTimestamp: "timestamp",
	KindTimestampTZ: "timestamptz", KindInterval: "interval", KindArray: "array",
	KindEnum: "enum", KindInet: "inet", KindCIDR: "cidr", KindMACAddr: "macaddr",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if name == strings.ToLower(s) {
			return Kind(k), nil
		}
	}
	return KindUnknown, fmt.Errorf("unknown type %q", s)
}

func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	*k = v
	return err
}

// IsInteger reports whether values of k are int64.
func (k Kind) IsInteger() bool { return k == KindInt16 || k == KindInt32 || k == KindInt64 }

// Type is a canonical column type with its parameters.
type Type struct {
	Kind Kind `json:"kind"`
	// Precision and Scale of a decimal; 0 when unconstrained.
	Precision int `json:"precision,omitempty"`
	Scale     int `json:"scale,omitempty"`
	// Length of a bounded text or bytes column (varchar(n)); 0 when unbounded.
	Length int `json:"length,omitempty"`
	// Elem is the element type of an array.
	Elem *Type `json:"elem,omitempty"`
	// EnumValues lists an enum's labels in order.
	EnumValues []string `json:"enum_values,omitempty"`
	// Native is the source's own spelling of the type ("varchar(20)",
	// "timestamp with time zone"). A destination of the same engine may use it;
	// any other destination must go by Kind.
	Native string `json:"native,omitempty"`
	// TextForm marks a source type without a canonical kind (PostgreSQL's
	// hstore, citext, ranges, geometric and extension types): Kind is text
	// and values are the type's text form. A destination that has the type
	// Native names keeps it; any other holds text and loses the type's
	// meaning (operators, validation, case-insensitive comparison).
	TextForm bool `json:"text_form,omitempty"`
	// User is the source's user-defined type (domain, composite) the column
	// has, for a destination of the same engine that can create it.
	User *UserType `json:"user,omitempty"`
}

func (t Type) String() string {
	switch t.Kind {
	case KindDecimal:
		if t.Precision > 0 {
			return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
		}
	case KindArray:
		if t.Elem != nil {
			return t.Elem.String() + "[]"
		}
	}
	return t.Kind.String()
}

// Column is one column of a table.
type Column struct {
	Name     string `json:"name"`
	Type     Type   `json:"type"`
	Nullable bool   `json:"nullable"`
	// Generated columns are computed by the source; they are read but a
	// destination of the same engine may recreate them instead of writing them.
	Generated bool `json:"generated,omitempty"`
	// Expression is a generated column's expression, Default a column's
	// default, both in the source engine's SQL (see schema.go).
	Expression string `json:"expression,omitempty"`
	Default    string `json:"default,omitempty"`
	// Collation is the column's collation when it is not its type's
	// default, qualified in the source engine's spelling (pg_catalog."C").
	Collation string `json:"collation,omitempty"`
	// Uses are the user-defined functions Default or Expression calls, in
	// the source engine's spelling ("app.next_code()"): a destination
	// without them cannot create the default or expression.
	Uses []string `json:"uses,omitempty"`
	// Identity is set for an identity column (and for a MySQL
	// AUTO_INCREMENT column, see portable.go).
	Identity *Identity `json:"identity,omitempty"`
	// Constant is a default in the portable form, from a source whose
	// Default another engine cannot read (portable.go).
	Constant *Constant `json:"constant,omitempty"`
	// Comment is the source's comment on the column, "" when none.
	Comment string `json:"comment,omitempty"`
	// SentUnchanged: the source's change stream may send this column of an
	// update as Unchanged rather than its value (PostgreSQL: a value
	// stored out of line, TOAST, that the update left alone, when the
	// table's replica identity is not FULL). Transforms that read a row's
	// values on the change stream refuse such a column (transform).
	SentUnchanged bool `json:"sent_unchanged,omitempty"`
}

// Table is a table's canonical schema plus the source's size estimates.
type Table struct {
	Namespace Namespace `json:"namespace"`
	Columns   []Column  `json:"columns"`
	// PrimaryKey lists key column names in key order; empty when the table has
	// no primary key (nor a usable unique key).
	PrimaryKey []string `json:"primary_key,omitempty"`
	// PrimaryKeyName is the source's name for its primary key constraint,
	// when it has one a destination of the same engine can reuse; empty
	// otherwise.
	PrimaryKeyName string `json:"primary_key_name,omitempty"`
	// PrimaryKeyPartitions are, for a partitioned table, its primary key's
	// indexes on the partitions with the source's names (schema.go).
	PrimaryKeyPartitions []PartitionIndex `json:"primary_key_partitions,omitempty"`
	// EstimatedRows and EstimatedBytes come from the source's statistics.
	EstimatedRows  int64 `json:"estimated_rows"`
	EstimatedBytes int64 `json:"estimated_bytes"`
	// FullRowIdentity means changes carry the whole old row, which lets CDC
	// apply changes to a table without a primary key.
	FullRowIdentity bool `json:"full_row_identity,omitempty"`
	// NoChangeStream says why the source's change stream cannot see the
	// table's changes (a PostgreSQL UNLOGGED table: logical decoding reads
	// the WAL, which such a table does not write); "" when it can. A flow
	// with change data capture leaves such a table out; a snapshot copies it.
	NoChangeStream string `json:"no_change_stream,omitempty"`
	// Indexes are the source's secondary indexes (not the primary key), for
	// a destination that builds them once the table is copied.
	Indexes []Index `json:"indexes,omitempty"`
	// Sequences are the sequences the table's defaults use (serial columns'
	// and standalone ones), for a destination of the same engine to create
	// before the table.
	Sequences []SequenceDef `json:"sequences,omitempty"`
	// Extensions are the extensions its columns use (schema.go).
	Extensions []Extension `json:"extensions,omitempty"`
	// Comment is the source's comment on the table, "" when none.
	Comment string `json:"comment,omitempty"`
	// Functions are the user-defined functions its definition calls
	// (defaults, generated columns, domain and table CHECKs, index
	// expressions), for a destination of the same engine to create before
	// the table; those that depend on a table wait for the cutover.
	Functions []Object `json:"functions,omitempty"`
	// Partitioning is set for a partitioned table (schema.go).
	Partitioning *Partitioning `json:"partitioning,omitempty"`
	// Uncarried are definitions a destination of another engine cannot be
	// given (portable.go), listed by it with what to run.
	Uncarried []Uncarried `json:"uncarried,omitempty"`
}

// Index is a secondary index of a source table.
type Index struct {
	Name   string `json:"name"`
	Unique bool   `json:"unique,omitempty"`
	// Columns are the indexed columns in order, empty when the index has
	// expressions.
	Columns []string `json:"columns,omitempty"`
	// Native is the source engine's definition, for a destination of the
	// same engine (PostgreSQL: what follows USING in pg_get_indexdef,
	// "btree (lower(email)) WHERE deleted IS NULL").
	Native string `json:"native,omitempty"`
	// Partitions are its indexes on the partitions of a partitioned
	// table, with the source's names.
	Partitions []PartitionIndex `json:"partitions,omitempty"`
}

// ColumnIndex returns the position of the named column, or -1.
func (t *Table) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// KeyIndexes returns the positions of the primary-key columns in key order.
func (t *Table) KeyIndexes() []int {
	idx := make([]int, len(t.PrimaryKey))
	for i, name := range t.PrimaryKey {
		idx[i] = t.ColumnIndex(name)
	}
	return idx
}

// Validate checks the invariants every connector relies on.
func (t *Table) Validate() error {
	if t.Namespace.Table == "" {
		return fmt.Errorf("table without a name")
	}
	if len(t.Columns) == 0 {
		return fmt.Errorf("table %s has no columns", t.Namespace)
	}
	seen := make(map[string]bool, len(t.Columns))
	for _, c := range t.Columns {
		if seen[c.Name] {
			return fmt.Errorf("table %s: duplicate column %q", t.Namespace, c.Name)
		}
		seen[c.Name] = true
	}
	for _, k := range t.PrimaryKey {
		if !seen[k] {
			return fmt.Errorf("table %s: primary key column %q is not a column", t.Namespace, k)
		}
	}
	return nil
}

// Clone returns a deep copy, so a renamed or altered table never aliases the
// plan's copy.
func (t *Table) Clone() *Table {
	b, err := json.Marshal(t)
	if err != nil {
		panic(fmt.Sprintf("model: cloning table %s: %v", t.Namespace, err)) // unreachable: Table always marshals
	}
	var c Table
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("model: cloning table %s: %v", t.Namespace, err))
	}
	return &c
}
