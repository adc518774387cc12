package engine

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestDescribeSchemaChange(t *testing.T) {
	col := func(n, native string, k model.Kind) model.Column {
		return model.Column{Name: n, Type: model.Type{Kind: k, Native: native}}
	}
	from := &model.Table{Columns: []model.Column{col("id", "int4", model.KindInt32), col("a", "text", model.KindText), col("b", "int4", model.KindInt32), col("gone", "text", model.KindText)}}
	to := &model.Table{Columns: []model.Column{col("id", "int4", model.KindInt32), col("a2", "text", model.KindText), col("b", "int8", model.KindInt64), col("c", "text", model.KindText)}}
	got := describeSchemaChange(from, model.SchemaChange{Table: to, Renamed: map[string]string{"a2": "a"}})
	if want := "renamed a to a2; b: int4 to int8; added c; dropped gone"; got != want {
		t.Errorf("describeSchemaChange = %q, want %q", got, want)
	}
	if got := describeSchemaChange(from, model.SchemaChange{Table: from.Clone()}); got != "" {
		t.Errorf("no change described as %q", got)
	}
}
