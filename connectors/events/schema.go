package events

import (
	"encoding/json"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// schemaEvent is a table's new shape, in the form of Debezium's schema
// change events (its MySQL connector's schema change topic): the table's
// columns and key after the change, and the columns renamed; for a table
// dropped, its last shape.
type schemaEvent struct {
	Source       source        `json:"source"`
	TsMs         int64         `json:"ts_ms"`
	DatabaseName string        `json:"databaseName"`
	SchemaName   string        `json:"schemaName"`
	TableChanges []tableChange `json:"tableChanges"`
}

type tableChange struct {
	Type    string            `json:"type"`
	ID      string            `json:"id"`
	Table   tableShape        `json:"table"`
	Renamed map[string]string `json:"renamed,omitempty"`
}

type tableShape struct {
	PrimaryKeyColumnNames []string      `json:"primaryKeyColumnNames"`
	Columns               []columnShape `json:"columns"`
}

type columnShape struct {
	Name     string `json:"name"`
	TypeName string `json:"typeName"`
	Kind     string `json:"ferryKind"`
	Position int    `json:"position"`
	Optional bool   `json:"optional"`
}

func (o Options) schemaChange(ev connector.Event) ([]Message, error) {
	t := ev.Schema.Table
	shape := tableShape{PrimaryKeyColumnNames: append([]string{}, t.PrimaryKey...)}
	for i, c := range t.Columns {
		shape.Columns = append(shape.Columns, columnShape{Name: c.Name, TypeName: nativeOr(c.Type.Native, c.Type.String()), Kind: c.Type.String(), Position: i + 1, Optional: c.Nullable})
	}
	id := `"` + strings.ReplaceAll(t.Namespace.Table, `"`, `""`) + `"`
	if t.Namespace.Schema != "" {
		id = `"` + strings.ReplaceAll(t.Namespace.Schema, `"`, `""`) + `".` + id
	}
	v, err := json.Marshal(schemaEvent{
		Source: o.source(ev.Source, ev.Position, ev.CommitTime, ev.TxID), TsMs: o.now().UnixMilli(),
		DatabaseName: t.Namespace.Schema, SchemaName: t.Namespace.Schema,
		TableChanges: []tableChange{{Type: changeType(ev.Schema), ID: id, Table: shape, Renamed: ev.Schema.Renamed}},
	})
	return []Message{{Subject: o.SchemaSubject(), Key: []byte(`{"table":` + string(mustJSON(t.Namespace.String())) + `}`), Value: v, ID: ev.ID}}, err
}

// changeType is Debezium's tableChanges type: a table created (CREATE),
// dropped (DROP) or changed (ALTER).
func changeType(ch *model.SchemaChange) string {
	switch {
	case ch.Created:
		return "CREATE"
	case ch.Dropped:
		return "DROP"
	}
	return "ALTER"
}

func nativeOr(n, s string) string {
	if n != "" {
		return n
	}
	return s
}

func mustJSON(s string) []byte { b, _ := json.Marshal(s); return b }
