package events

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	now    = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	commit = time.Date(2026, 12, 6, 9, 59, 59, 500e6, time.UTC)
)

func opts(tombstones bool) Options {
	return Options{Prefix: "shop", Flow: "f1", Plan: "p1", Tombstones: tombstones, Connector: "postgresql", Database: "shopdb", Now: func() time.Time { return now }}
}

// golden compares the messages with testdata/name.json, each message's
// key and value as JSON.
func golden(t *testing.T, name string, msgs []Message) {
	t.Helper()
	type out struct {
		Subject string          `json:"subject"`
		ID      string          `json:"id"`
		Key     json.RawMessage `json:"key"`
		Value   json.RawMessage `json:"value"`
	}
	var got []out
	for _, m := range msgs {
		o := out{Subject: m.Subject, ID: m.ID, Key: m.Key, Value: m.Value}
		if m.Key == nil {
			o.Key = json.RawMessage("null")
		}
		if m.Value == nil {
			o.Value = json.RawMessage("null")
		}
		got = append(got, o)
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(b)) {
		t.Errorf("%s differs from %s:\n%s", name, path, b)
	}
}

func usersTable() *model.Table {
	return &model.Table{
		Namespace:  model.Namespace{Schema: "public", Table: "users"},
		Columns:    []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}, {Name: "name", Type: model.Type{Kind: model.KindText}, Nullable: true}, {Name: "bio", Type: model.Type{Kind: model.KindText}, Nullable: true}},
		PrimaryKey: []string{"id"},
	}
}

func event(op model.Op, row, key model.Row) connector.Event {
	t := usersTable()
	return connector.Event{Op: op, Table: t, Source: t.Namespace, Row: row, Key: key, ID: "f1/0/16B3740/3", Position: "0/16B3740", CommitTime: commit, TxID: "771"}
}

func TestGoldenOps(t *testing.T) {
	cases := []struct {
		name       string
		ev         connector.Event
		tombstones bool
	}{
		{"op_create", event(model.OpInsert, model.Row{int64(1), "ada", "hi"}, nil), false},
		{"op_update", event(model.OpUpdate, model.Row{int64(1), "ada l.", model.Unchanged}, nil), false},
		{"op_update_key", event(model.OpUpdate, model.Row{int64(2), "ada", nil}, model.Row{int64(1)}), true},
		{"op_delete", event(model.OpDelete, nil, model.Row{int64(1)}), false},
		{"op_delete_tombstone", event(model.OpDelete, nil, model.Row{int64(1)}), true},
		{"op_truncate", event(model.OpTruncate, nil, nil), false},
		{"op_read_incremental", func() connector.Event {
			ev := event(model.OpInsert, model.Row{int64(1), "ada", nil}, nil)
			ev.Read, ev.ID = true, "f1/0/16B3740/r/public.users/0"
			return ev
		}(), false},
		{"op_schema", connector.Event{Table: usersTable(), Source: usersTable().Namespace, ID: "f1/0/16B3740/s0.0", Position: "0/16B3740", CommitTime: commit,
			Schema: &model.SchemaChange{Table: usersTable(), Renamed: map[string]string{"bio": "about"}}}, false},
		{"op_schema_create", connector.Event{Table: usersTable(), Source: usersTable().Namespace, ID: "f1/0/16B3740/s0.0", Position: "0/16B3740", CommitTime: commit, TxID: "771",
			Schema: &model.SchemaChange{Table: usersTable(), Created: true}}, false},
		{"op_schema_drop", connector.Event{Table: usersTable(), Source: usersTable().Namespace, ID: "f1/0/16B3740/s0.0", Position: "0/16B3740", CommitTime: commit, TxID: "771",
			Schema: &model.SchemaChange{Table: usersTable(), Dropped: true}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs, err := opts(c.tombstones).Encode(c.ev)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, msgs)
		})
	}
	t.Run("op_read", func(t *testing.T) {
		m, err := opts(false).Read(usersTable(), model.Row{int64(1), "ada", nil})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "op_read", []Message{m})
	})
}

func TestGoldenTypes(t *testing.T) {
	ts := time.Date(2026, 12, 6, 8, 30, 15, 123456000, time.UTC)
	cols := []struct {
		name string
		typ  model.Type
		v    any
	}{
		{"b", model.Type{Kind: model.KindBool}, true},
		{"i16", model.Type{Kind: model.KindInt16}, int64(-7)},
		{"i64", model.Type{Kind: model.KindInt64}, int64(9007199254740993)},
		{"dec", model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 2}, "-12.50"},
		{"f32", model.Type{Kind: model.KindFloat32}, float64(float32(1.5))},
		{"f64", model.Type{Kind: model.KindFloat64}, 3.141592653589793},
		{"nan", model.Type{Kind: model.KindFloat64}, nanValue()},
		{"txt", model.Type{Kind: model.KindText}, "héllo \"q\""},
		{"byt", model.Type{Kind: model.KindBytes}, []byte{0, 1, 2, 0xff}},
		{"js", model.Type{Kind: model.KindJSON}, `{"a": [1, 2]}`},
		{"uid", model.Type{Kind: model.KindUUID}, "0b6f0e4e-8c3c-4a55-9a55-3b4bb3f3a8a1"},
		{"d", model.Type{Kind: model.KindDate}, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"d_old", model.Type{Kind: model.KindDate}, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"tm", model.Type{Kind: model.KindTime}, 13*time.Hour + 4*time.Minute + 5*time.Second + 6*time.Microsecond},
		{"ttz", model.Type{Kind: model.KindTimeTZ}, model.TimeTZ{Time: 13 * time.Hour, Offset: 2 * 3600}},
		{"ts", model.Type{Kind: model.KindTimestamp}, ts},
		{"tstz", model.Type{Kind: model.KindTimestampTZ}, ts},
		{"ts_inf", model.Type{Kind: model.KindTimestampTZ}, model.PosInfinity},
		{"iv", model.Type{Kind: model.KindInterval}, model.Interval{Months: 14, Days: 3, Micros: 4*3600e6 + 5*60e6 + 6500000}},
		{"iv0", model.Type{Kind: model.KindInterval}, model.Interval{}},
		{"arr", model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt32}}, []any{int64(1), nil, int64(3)}},
		{"en", model.Type{Kind: model.KindEnum}, "happy"},
		{"inet", model.Type{Kind: model.KindInet}, "10.0.0.1/32"},
		{"nul", model.Type{Kind: model.KindText}, nil},
		{"toast", model.Type{Kind: model.KindText}, model.Unchanged},
	}
	tbl := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "types"}, PrimaryKey: []string{"id"},
		Columns: []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt32}}}}
	row := model.Row{int64(1)}
	for _, c := range cols {
		tbl.Columns = append(tbl.Columns, model.Column{Name: c.name, Type: c.typ, Nullable: true})
		row = append(row, c.v)
	}
	msgs, err := opts(false).Encode(connector.Event{Op: model.OpInsert, Table: tbl, Source: tbl.Namespace, Row: row, ID: "f1/0/1/0", Position: "0/1", CommitTime: commit})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "types", msgs)
}

func TestSubjectCleansNames(t *testing.T) {
	o := Options{Prefix: "ferry"}
	if got := o.Subject(model.Namespace{Schema: "my schema", Table: "a.b*>"}); got != "ferry.my_schema.a_b__" {
		t.Errorf("subject: %q", got)
	}
}

// TestSourceBlock checks Debezium's source fields a consumer reads to
// place an event: the database, schema and table, the position in the
// source's terms, the transaction and whether it came from the snapshot.
func TestSourceBlock(t *testing.T) {
	srcOf := func(t *testing.T, m Message) map[string]any {
		t.Helper()
		var env struct{ Source map[string]any }
		if err := json.Unmarshal(m.Value, &env); err != nil {
			t.Fatal(err)
		}
		return env.Source
	}
	check := func(t *testing.T, got map[string]any, want map[string]any) {
		t.Helper()
		for k, w := range want {
			if w == nil {
				if v, ok := got[k]; ok {
					t.Errorf("source.%s = %v, want it absent", k, v)
				}
				continue
			}
			if got[k] != w {
				t.Errorf("source.%s = %#v, want %#v", k, got[k], w)
			}
		}
	}
	t.Run("postgresql", func(t *testing.T) {
		ev := event(model.OpInsert, model.Row{int64(1), "ada", nil}, nil)
		ev.Position = "16/B374D848"
		msgs, err := opts(false).Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		check(t, srcOf(t, msgs[0]), map[string]any{"connector": "postgresql", "db": "shopdb", "schema": "public", "table": "users",
			"lsn": float64(0x16<<32 | 0xB374D848), "txId": float64(771), "ts_ms": float64(commit.UnixMilli()), "snapshot": "false", "file": nil})
		r, err := opts(false).Read(usersTable(), model.Row{int64(1), "ada", nil})
		if err != nil {
			t.Fatal(err)
		}
		check(t, srcOf(t, r), map[string]any{"snapshot": "true", "db": "shopdb", "lsn": nil, "txId": nil})
	})
	t.Run("mysql", func(t *testing.T) {
		o := opts(false)
		o.Connector, o.Database = "mysql", "ignored"
		tbl := usersTable()
		tbl.Namespace.Schema = "shop"
		msgs, err := o.Encode(connector.Event{Op: model.OpDelete, Table: tbl, Source: tbl.Namespace, Key: model.Row{int64(1)},
			ID: "x", Position: "mysql-bin.000042:1234@0-1-42", CommitTime: commit})
		if err != nil {
			t.Fatal(err)
		}
		check(t, srcOf(t, msgs[0]), map[string]any{"connector": "mysql", "db": "shop", "schema": nil, "table": "users",
			"file": "mysql-bin.000042", "pos": float64(1234), "gtid": "0-1-42", "lsn": nil, "txId": nil})
	})
}

// TestDeleteFullRowIdentityWithKey: a MySQL source with
// binlog_row_image=FULL marks tables FullRowIdentity, but a table with a
// primary key still gets the key alone in a delete.
func TestDeleteFullRowIdentityWithKey(t *testing.T) {
	tbl := usersTable()
	tbl.FullRowIdentity = true
	msgs, err := opts(false).Encode(connector.Event{Op: model.OpDelete, Table: tbl, Source: tbl.Namespace, Key: model.Row{int64(7)}, ID: "x", Position: "0/1"})
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ Before map[string]any }
	if err := json.Unmarshal(msgs[0].Value, &env); err != nil {
		t.Fatal(err)
	}
	if env.Before["id"] != float64(7) || string(msgs[0].Key) != `{"id":7}` {
		t.Errorf("delete: before %v, key %s", env.Before, msgs[0].Key)
	}
}
