package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/state"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// pair is a source and a destination database on the shared server.
type pair struct {
	srv      *pgtest.Server
	src, dst string // database names
}

func newPair(t *testing.T) *pair {
	t.Helper()
	srv := pgtest.Shared(t)
	return &pair{srv: srv, src: srv.CreateDatabase(t, "src"), dst: srv.CreateDatabase(t, "dst")}
}

func (p *pair) srcURL() string { return p.srv.URL(p.src) }
func (p *pair) dstURL() string { return p.srv.URL(p.dst) }

// open opens a connector on a URL, closed when the test ends.
func open(t testing.TB, raw string) *postgres.Conn {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runFlow runs a flow in this process, the way ferry sync does, and
// returns the error Run returned.
func runFlow(t *testing.T, cfg flow.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return runFlowUntil(ctx, t, cfg)
}

// runFlowUntil runs a flow in this process until ctx is done (or the flow
// ends by itself, with cfg.Until).
func runFlowUntil(ctx context.Context, t *testing.T, cfg flow.Config) error {
	t.Helper()
	if cfg.StateDir == "" {
		t.Fatal("runFlow needs a state dir")
	}
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		return err
	}
	defer dst.Close()
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logOut io.Writer = io.Discard
	if os.Getenv("FERRY_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	e, err := engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(logOut, nil)))
	if err != nil {
		return err
	}
	return e.Run(ctx, ctx)
}

// textRows reads every row of a table, each column as its text output,
// ordered by the given expression.
func textRows(t *testing.T, conn *pgx.Conn, table, orderBy string) [][]*string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT * FROM %s ORDER BY %s", table, orderBy), pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]*string
	for rows.Next() {
		raw := rows.RawValues()
		row := make([]*string, len(raw))
		for i, v := range raw {
			if v != nil {
				s := string(v)
				row[i] = &s
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// columnNames lists a table's columns.
func columnNames(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT * FROM %s LIMIT 0", table))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	return names
}

// sameTable compares a table on both sides value by value, as text.
func sameTable(t *testing.T, src, dst *pgx.Conn, table, orderBy string) {
	t.Helper()
	cols := columnNames(t, src, table)
	a := textRows(t, src, table, orderBy)
	b := textRows(t, dst, table, orderBy)
	if len(a) != len(b) {
		t.Fatalf("%s: source has %d rows, destination %d", table, len(a), len(b))
	}
	for r := range a {
		for i := range a[r] {
			x, y := a[r][i], b[r][i]
			if (x == nil) != (y == nil) || x != nil && *x != *y {
				t.Fatalf("%s row %d column %s: source %s, destination %s", table, r, cols[i], show(x), show(y))
			}
		}
	}
}

func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}

func count(t *testing.T, conn *pgx.Conn, q string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
