package model

import (
	"fmt"
	"strings"
)

// Namespace names a table: schema (or database) plus table name.
type Namespace struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
}

// String renders "schema.table", or just "table" when there is no schema.
func (n Namespace) String() string {
	if n.Schema == "" {
		return n.Table
	}
	return n.Schema + "." + n.Table
}

// ParseNamespace parses "schema.table" or "table". The first dot separates
// schema and table; a table name may therefore contain dots, a schema may not.
func ParseNamespace(s string) (Namespace, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Namespace{}, fmt.Errorf("empty table name")
	}
	schema, table, ok := strings.Cut(s, ".")
	if !ok {
		return Namespace{Table: s}, nil
	}
	if schema == "" || table == "" {
		return Namespace{}, fmt.Errorf("table name %q: expected schema.table", s)
	}
	return Namespace{Schema: schema, Table: table}, nil
}
