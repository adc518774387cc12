package flow

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Query is one query replicated by a flow (ferry sync --query): its result
// is kept in the destination table Name, read past the last Watermark
// reached on each run.
type Query struct {
	// Name is the destination table, schema-qualified or not.
	Name string `yaml:"name"`
	// SQL is the query, run at the source as a subquery.
	SQL string `yaml:"query"`
	// Watermark is a column of the result (an integer, a date or a
	// timestamp) that grows as rows are added or changed.
	Watermark string `yaml:"watermark"`
	// Key are columns of the result that identify a row: rows are then
	// upserted by them; without a key they are appended.
	Key []string `yaml:"key"`
}

// Namespace is the query's destination table.
func (q Query) Namespace() (model.Namespace, error) { return model.ParseNamespace(q.Name) }

// Lookback is a margin re-read below the last watermark on each run: a
// duration for a date or timestamp watermark, a number for an integer one.
type Lookback struct {
	Duration time.Duration
	Count    int64
}

// Zero reports no lookback.
func (l Lookback) Zero() bool { return l.Duration == 0 && l.Count == 0 }

// ParseLookback parses --lookback: DURATION (10m) or N (500); "" is none.
func ParseLookback(s string) (Lookback, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Lookback{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return Lookback{}, fmt.Errorf("--lookback %s: give a positive number or duration", s)
		}
		return Lookback{Count: n}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Lookback{}, fmt.Errorf("--lookback %q: give a duration (10m, 24h) for a time watermark or a number (500) for an integer one", s)
	}
	return Lookback{Duration: d}, nil
}

// ApplyQueryFlags sets the flow's queries from the command line: each
// --query NAME=SQL, then --watermark and --key, each [NAME=]VALUE (the
// NAME= form is needed when there are several queries). Flags given
// replace what the flow file says.
func (c *Config) ApplyQueryFlags(queries, watermarks, keys []string) error {
	if len(queries) > 0 {
		c.Queries = nil
		for _, q := range queries {
			name, sql, ok := strings.Cut(q, "=")
			if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(sql) == "" {
				return errs.BadConfig(fmt.Sprintf("--query %q: expected NAME='SELECT ...'", q), "NAME is the destination table, e.g. --query reports.daily='SELECT ...'")
			}
			c.Queries = append(c.Queries, Query{Name: strings.TrimSpace(name), SQL: sql})
		}
	}
	set := func(flag string, vals []string, apply func(*Query, string)) error {
		for _, v := range vals {
			target, val, named := c.queryFor(v)
			switch {
			case len(c.Queries) == 0:
				return errs.BadConfig(fmt.Sprintf("--%s %s without a query", flag, v), "give the query with --query NAME='SELECT ...'")
			case named && target == nil:
				return errs.BadConfig(fmt.Sprintf("--%s %s: no query is named %q", flag, v, strings.SplitN(v, "=", 2)[0]), "name one of the --query names")
			case !named && len(c.Queries) > 1:
				return errs.BadConfig(fmt.Sprintf("--%s %s: there are %d queries", flag, v, len(c.Queries)), fmt.Sprintf("say which: --%s NAME=%s", flag, v))
			case !named:
				target = &c.Queries[0]
			}
			apply(target, strings.TrimSpace(val))
		}
		return nil
	}
	if err := set("watermark", watermarks, func(q *Query, v string) { q.Watermark = v }); err != nil {
		return err
	}
	return set("key", keys, func(q *Query, v string) {
		q.Key = nil
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				q.Key = append(q.Key, k)
			}
		}
	})
}

// queryFor splits a [NAME=]VALUE flag value: named says it began with a
// NAME= (a query of that name, nil when none is).
func (c *Config) queryFor(v string) (q *Query, val string, named bool) {
	name, rest, ok := strings.Cut(v, "=")
	if !ok {
		return nil, v, false
	}
	for i := range c.Queries {
		if c.Queries[i].Name == strings.TrimSpace(name) {
			return &c.Queries[i], rest, true
		}
	}
	return nil, rest, true
}

// validateQueries checks a query flow's settings: each query named once,
// with a watermark; nothing that belongs to a flow of tables; a lookback
// only where rows are upserted by a key.
func (c *Config) validateQueries() error {
	if len(c.Queries) == 0 {
		for _, v := range []struct {
			set  bool
			flag string
		}{{c.Every != 0, "--every"}, {c.Lookback != "", "--lookback"}} {
			if v.set {
				return errs.BadConfig(v.flag+" is for query replication, and the flow has no query", "give --query NAME='SELECT ...'")
			}
		}
		return nil
	}
	switch {
	case len(c.Tables) > 0:
		return errs.BadConfig("--tables with --query: a query flow replicates the queries' results, not tables", "leave --tables out, or run the tables in a flow of their own")
	case c.Mode == ModeCDC || c.Mode == ModeFull:
		return errs.BadConfig(fmt.Sprintf("--mode %s with --query: a query flow reads its queries again on each run, without change data capture", c.Mode), "leave --mode out; use --every to run the queries on a schedule")
	case len(c.Rename) > 0:
		return errs.BadConfig("--rename with --query: the query's NAME is its destination table", "name the destination table in --query NAME='SELECT ...'")
	case c.Until != "":
		return errs.BadConfig("--until with --query", "leave --until out: without --every the queries run once")
	case c.Every < 0:
		return errs.BadConfig(fmt.Sprintf("--every %s", c.Every), "give a positive interval such as 30s or 5m")
	}
	if len(c.Exclude)+len(c.RenameColumns)+len(c.Mask)+len(c.Filter)+len(c.Compute) > 0 {
		return errs.BadConfig("transforms (--exclude, --mask, --filter, ...) with --query", "shape the rows in the query itself")
	}
	lb, err := ParseLookback(c.Lookback)
	if err != nil {
		return errs.BadConfig(err.Error(), "e.g. --lookback 10m, or --lookback 1000 for an integer watermark")
	}
	seen := map[model.Namespace]bool{}
	for _, q := range c.Queries {
		ns, err := q.Namespace()
		if err != nil {
			return errs.BadConfig(fmt.Sprintf("query %q: %v", q.Name, err), "NAME is the destination table: --query schema.table='SELECT ...'")
		}
		if seen[ns] {
			return errs.BadConfig(fmt.Sprintf("two queries are named %s", ns), "give each query its own destination table")
		}
		seen[ns] = true
		if strings.TrimSpace(q.SQL) == "" {
			return errs.BadConfig(fmt.Sprintf("query %s has no SQL", ns), "--query NAME='SELECT ...'")
		}
		if q.Watermark == "" {
			return errs.BadConfig(fmt.Sprintf("query %s has no watermark", ns), fmt.Sprintf("name a column of its result that grows as rows change (a timestamp or an increasing integer): --watermark %s=COLUMN", ns))
		}
		if !lb.Zero() && len(q.Key) == 0 {
			return errs.BadConfig(fmt.Sprintf("--lookback without a key for query %s: its rows are appended, so the rows re-read would be written twice", ns),
				fmt.Sprintf("give the columns that identify a row with --key %s=COLUMNS, or leave --lookback out", ns))
		}
	}
	return nil
}

// queryNames lists the queries' destination tables, for the flow's name.
func (c *Config) queryNames() string {
	names := make([]string, len(c.Queries))
	for i, q := range c.Queries {
		names[i] = q.Name
	}
	return strings.Join(names, ",")
}
