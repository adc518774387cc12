package flow

import (
	"strings"
	"testing"
	"time"
)

func TestApplyQueryFlags(t *testing.T) {
	for _, c := range []struct {
		name                      string
		queries, watermarks, keys []string
		want                      []Query
		err                       string
	}{
		{name: "one query, bare flags", queries: []string{"rep.t=SELECT a, b FROM x WHERE a = 'x=y'"}, watermarks: []string{"b"}, keys: []string{"a, c"},
			want: []Query{{Name: "rep.t", SQL: "SELECT a, b FROM x WHERE a = 'x=y'", Watermark: "b", Key: []string{"a", "c"}}}},
		{name: "two queries, named flags", queries: []string{"a=SELECT 1", "b=SELECT 2"}, watermarks: []string{"a=x", "b=y"}, keys: []string{"b=k"},
			want: []Query{{Name: "a", SQL: "SELECT 1", Watermark: "x"}, {Name: "b", SQL: "SELECT 2", Watermark: "y", Key: []string{"k"}}}},
		{name: "two queries, a bare flag", queries: []string{"a=SELECT 1", "b=SELECT 2"}, watermarks: []string{"x"}, err: "say which"},
		{name: "an unknown name", queries: []string{"a=SELECT 1"}, watermarks: []string{"c=x"}, err: `no query is named "c"`},
		{name: "no SQL", queries: []string{"a="}, err: "expected NAME="},
		{name: "a watermark without a query", watermarks: []string{"x"}, err: "without a query"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			err := cfg.ApplyQueryFlags(c.queries, c.watermarks, c.keys)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || len(cfg.Queries) != len(c.want) {
				t.Fatalf("queries %+v (%v), want %+v", cfg.Queries, err, c.want)
			}
			for i, q := range cfg.Queries {
				w := c.want[i]
				if q.Name != w.Name || q.SQL != w.SQL || q.Watermark != w.Watermark || strings.Join(q.Key, ",") != strings.Join(w.Key, ",") {
					t.Fatalf("query %d is %+v, want %+v", i, q, w)
				}
			}
		})
	}
}

func TestValidateQueries(t *testing.T) {
	q := []Query{{Name: "rep.t", SQL: "SELECT 1", Watermark: "w"}}
	for _, c := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"fine", Config{Queries: q, Every: time.Minute}, ""},
		{"lookback needs a key", Config{Queries: q, Lookback: "10m"}, "--lookback without a key"},
		{"lookback with a key", Config{Queries: []Query{{Name: "t", SQL: "SELECT 1", Watermark: "w", Key: []string{"id"}}}, Lookback: "500"}, ""},
		{"bad lookback", Config{Queries: q, Lookback: "soon"}, "--lookback"},
		{"tables", Config{Queries: q, Tables: []string{"a.*"}}, "--tables with --query"},
		{"mode full", Config{Queries: q, Mode: ModeFull}, "--mode full with --query"},
		{"twice the same table", Config{Queries: append(q, q[0])}, "two queries are named rep.t"},
		{"every without a query", Config{Every: time.Minute}, "--every is for query replication"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Source, c.cfg.Destination = "postgres://a/b", "postgres://c/d"
			err := c.cfg.Validate()
			if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("Validate: %v, want %q", err, c.err)
			}
		})
	}
	a := Config{Source: "postgres://a/b", Destination: "postgres://c/d"}
	b := a
	b.Queries = q
	if a.FlowName() == b.FlowName() {
		t.Fatal("a query flow is named as the table flow between the same databases")
	}
}
