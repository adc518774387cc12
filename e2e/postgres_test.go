package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// pgShop creates the tables a PostgreSQL flow copies: orders (with a
// TOAST-sized note on some rows), a composite-key table and rows numbered
// 1..rows.
func pgShop(t *testing.T, srv *pgtest.Server, db string, rows int) {
	t.Helper()
	srv.Exec(t, db, fmt.Sprintf(`
		CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, amount numeric(12,2), note text,
			tags text[], placed timestamptz NOT NULL DEFAULT now());
		INSERT INTO orders SELECT g, g %% 97, (g * 1.25)::numeric(12,2),
			CASE WHEN g %% 500 = 0 THEN repeat(md5(g::text), 200) ELSE 'note ' || g END,
			ARRAY['t' || (g %% 3)], '2024-01-01'::timestamptz + g * interval '1 minute'
			FROM generate_series(1, %d) g;
		CREATE TABLE lines (order_id bigint, line int, sku text, qty int, PRIMARY KEY (order_id, line));
		INSERT INTO lines SELECT g, l, 'sku-' || l, l FROM generate_series(1, %d) g, generate_series(1, 2) l;
		ANALYZE;`, rows, rows/2))
}

// pgWriter keeps inserting, updating and deleting orders until stopped.
type pgWriter struct {
	stop chan struct{}
	done chan error
	ops  atomic.Int64
}

func startPGWriter(t *testing.T, dsn string, firstID int64) *pgWriter {
	t.Helper()
	w := &pgWriter{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		ctx := context.Background()
		var conn *pgx.Conn
		connect := func() error {
			var err error
			for i := 0; i < 300; i++ {
				if conn, err = pgx.Connect(ctx, dsn); err == nil {
					return nil
				}
				time.Sleep(100 * time.Millisecond)
			}
			return err
		}
		if err := connect(); err != nil {
			w.done <- err
			return
		}
		defer func() {
			if conn != nil {
				conn.Close(ctx)
			}
		}()
		rng := rand.New(rand.NewSource(firstID))
		next := firstID
		for {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			id := rng.Int63n(next-1) + 1
			var err error
			switch rng.Intn(4) {
			case 0, 1:
				_, err = conn.Exec(ctx, `INSERT INTO orders (id, customer, amount, note) VALUES ($1, $2, $3, 'new') ON CONFLICT DO NOTHING`, next, rng.Intn(100), rng.Intn(10000))
				if err == nil {
					_, err = conn.Exec(ctx, `INSERT INTO lines VALUES ($1, 1, 'new', 1) ON CONFLICT DO NOTHING`, next)
				}
				next++
			case 2:
				// Leaves the TOAST note unchanged on the rows that have one.
				_, err = conn.Exec(ctx, `UPDATE orders SET amount = amount + 1, tags = tags || 'u'::text WHERE id = $1`, id)
			case 3:
				var tx pgx.Tx
				if tx, err = conn.Begin(ctx); err == nil {
					if _, err = tx.Exec(ctx, `DELETE FROM orders WHERE id = $1`, id); err == nil {
						_, err = tx.Exec(ctx, `DELETE FROM lines WHERE order_id = $1`, id)
					}
					if err == nil {
						err = tx.Commit(ctx)
					} else {
						tx.Rollback(ctx) //nolint:errcheck // reporting err
					}
				}
			}
			if err != nil {
				// The source may be restarting: reconnect and go on.
				conn.Close(ctx)
				conn = nil
				if cerr := connect(); cerr != nil {
					w.done <- fmt.Errorf("writer: %v, then %v", err, cerr)
					return
				}
				continue
			}
			w.ops.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { w.halt(t) })
	return w
}

func (w *pgWriter) halt(t *testing.T) {
	t.Helper()
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	if err := <-w.done; err != nil {
		t.Errorf("writer: %v", err)
	}
}

// pgDigest is a digest of a table's rows in key order, as text.
func pgDigest(t *testing.T, srv *pgtest.Server, db, table, key string) (string, int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.AdminURL(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var digest *string
	var n int64
	q := fmt.Sprintf(`SELECT md5(string_agg(x::text, ',' ORDER BY %s)), count(*) FROM %s x`, key, table)
	if err := conn.QueryRow(ctx, q).Scan(&digest, &n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if digest == nil {
		return "", 0
	}
	return *digest, n
}

// sameSchema fails t when pg_dump -s of the schemas prints otherwise at the
// destination than at the source.
func sameSchema(t *testing.T, srv *pgtest.Server, src, dst string, schemas ...string) {
	t.Helper()
	if want, got := srv.SchemaDump(t, src, schemas...), srv.SchemaDump(t, dst, schemas...); got != want {
		t.Fatalf("pg_dump -s of %s differs:\n--- source\n%s\n--- destination\n%s", strings.Join(schemas, ", "), want, got)
	}
}

// queryRows is what q returns in db, one row a line, sorted, so two
// databases' answers compare as text.
func queryRows(t *testing.T, srv *pgtest.Server, db, q string) string {
	t.Helper()
	var s string
	if err := srv.Connect(t, db).QueryRow(context.Background(), `SELECT coalesce(string_agg(r::text, E'\n' ORDER BY r::text), '') FROM (`+q+`) r`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// samePG compares the shop tables of two databases directly.
func samePG(t *testing.T, srv *pgtest.Server, srcDB, dstDB string) {
	t.Helper()
	samePGAcross(t, srv, srcDB, srv, dstDB)
}

func samePGAcross(t *testing.T, srv *pgtest.Server, srcDB string, dsrv *pgtest.Server, dstDB string) {
	t.Helper()
	for _, tk := range [][2]string{{"orders", "id"}, {"lines", "order_id, line"}} {
		a, na := pgDigest(t, srv, srcDB, tk[0], tk[1])
		b, nb := pgDigest(t, dsrv, dstDB, tk[0], tk[1])
		if a != b || na != nb {
			t.Fatalf("%s differs: source %d rows (%s), destination %d rows (%s)", tk[0], na, a, nb, b)
		}
	}
}

func TestPostgresToPostgresWithConcurrentWriter(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "pgsrc"), srv.CreateDatabase(t, "pgdst")
	pgShop(t, srv, src, 8000)
	dir := t.TempDir()
	w := startPGWriter(t, srv.URL(src), 8001)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "pg2pg", "--state-dir", dir, "--parallel", "3",
		"--partition-rows", "1500", "--batch-rows", "500", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	time.Sleep(1500 * time.Millisecond) // changes during CDC
	w.halt(t)
	if w.ops.Load() < 50 {
		t.Fatalf("the writer made only %d changes", w.ops.Load())
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if fin := r.logLine("flow finished"); fin == nil {
		t.Fatalf("no final log line:\n%s", r)
	}
	v := mustFerry(t, "verify", srv.URL(src), srv.URL(dst))
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
	samePG(t, srv, src, dst)
	// The destination got the source's own column types.
	d := srv.Connect(t, dst)
	var typ string
	if err := d.QueryRow(context.Background(), `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'amount'`).Scan(&typ); err != nil || typ != "numeric(12,2)" {
		t.Fatalf("orders.amount at the destination: %q, %v", typ, err)
	}
	// The slot is acknowledged up to what was applied: nothing is pending.
	s := srv.Connect(t, src)
	var lag int64
	if err := s.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = 'ferry_pg2pg'`).Scan(&lag); err != nil {
		t.Fatal(err)
	}
	if lag > 1<<20 {
		t.Errorf("slot ferry_pg2pg lags %d bytes behind after catching up", lag)
	}
	// --restart drops the slot and publication before starting over.
	mustFerry(t, append(args, "--until", "caught-up", "--restart")...)
	samePG(t, srv, src, dst)
}

// waitCheckpoints polls the destination's checkpoints until cond holds.
func waitCheckpoints(t *testing.T, srv *pgtest.Server, db, flow string, timeout time.Duration, cond func(done, cdc int) bool) bool {
	t.Helper()
	conn := srv.Connect(t, db)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var done, cdc int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE key LIKE 'partition/%' AND value LIKE '%"done":true%'),
			count(*) FILTER (WHERE key LIKE 'cdc/%') FROM _ferry.checkpoints WHERE flow = $1`, flow).Scan(&done, &cdc)
		if err == nil && cond(done, cdc) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func TestPostgresKillDuringCopyAndCDCThenResume(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "killsrc"), srv.CreateDatabase(t, "killdst")
	pgShop(t, srv, src, 40000)
	dir := t.TempDir()
	// The first run writes through a narrow link, so it is still copying
	// when the kill comes, however fast the machine.
	px := faults.NewProxy(t, "pg-kill-resume", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	px.Bandwidth(t, 300, "upstream")
	args := []string{"sync", srv.URL(src), px.Rewrite(srv.URL(dst)), "--name", "pgkill", "--state-dir", dir, "--parallel", "2",
		"--partition-rows", "2500", "--batch-rows", "250", "--log-format", "json", "--progress", "none"}
	w := startPGWriter(t, srv.URL(src), 40001)

	// Kill during the copy, once some partitions are done and others not.
	bg := startFerry(t, args...)
	if !waitCheckpoints(t, srv, dst, "pgkill", 60*time.Second, func(done, _ int) bool { return done >= 2 }) {
		t.Fatalf("no partition finished:\n%s", bg.stderr.String())
	}
	if !bg.kill(t) {
		t.Fatalf("ferry finished before it could be killed:\n%s", bg.stderr.String())
	}
	px.Clear()
	var doneAtKill int
	srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM _ferry.checkpoints WHERE flow = 'pgkill' AND value LIKE '%"done":true%'`).Scan(&doneAtKill) //nolint:errcheck // checked below

	// Resume: finished partitions are skipped; then kill again during CDC.
	bg = startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("the resumed run did not reach CDC:\n%s", bg.stderr.String())
	}
	r := result{stderr: bg.stderr.String()}
	start := r.logLine("copy starting")
	if start == nil || int(start["skipped"].(float64)) < doneAtKill || doneAtKill == 0 {
		t.Fatalf("resumed copy: %v; want at least %d partitions skipped", start, doneAtKill)
	}
	time.Sleep(800 * time.Millisecond)
	if !waitCheckpoints(t, srv, dst, "pgkill", 30*time.Second, func(_, cdc int) bool { return cdc > 0 }) {
		t.Fatalf("no CDC checkpoint:\n%s", bg.stderr.String())
	}
	bg.kill(t)
	w.halt(t)

	final := mustFerry(t, append(args, "--until", "caught-up")...)
	if fin := final.logLine("flow finished"); fin == nil || fin["rows_written"].(float64) != 0 {
		t.Fatalf("the last run copied again: %v", fin)
	}
	mustFerry(t, "verify", srv.URL(src), srv.URL(dst))
	samePG(t, srv, src, dst)
}

func TestPostgresSourceRestartDuringCDC(t *testing.T) {
	// The source restarts; the destination is on another server.
	srv := pgtest.Start(t)
	dsrv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "rsrc"), dsrv.CreateDatabase(t, "rdst")
	pgShop(t, srv, src, 2000)
	dir := t.TempDir()
	srcURL := srv.URL(src) + "&reconnect_timeout=60s&heartbeat=1s"
	args := []string{"sync", srcURL, dsrv.URL(dst), "--name", "pgrestart", "--state-dir", dir, "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	w := startPGWriter(t, srv.URL(src), 2001)
	time.Sleep(500 * time.Millisecond)
	// Down long enough that reconnecting fails a few times.
	srv.RestartAfter(t, "fast", 2*time.Second)
	time.Sleep(1500 * time.Millisecond) // changes after the restart
	w.halt(t)
	// The running ferry reconnects and applies everything: both tables
	// (the writer inserts an order and its line in two transactions, so
	// orders alone can match while the line is still on its way; stopping
	// ferry then left it for the next run, and the comparison after the
	// stop failed by one row).
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, na := pgDigest(t, srv, src, "orders", "id")
		b, nb := pgDigest(t, dsrv, dst, "orders", "id")
		la, nla := pgDigest(t, srv, src, "lines", "order_id, line")
		lb, nlb := pgDigest(t, dsrv, dst, "lines", "order_id, line")
		if a == b && na == nb && la == lb && nla == nlb {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the destination did not catch up after the source restarted (source %d rows, destination %d):\n%s", na, nb, bg.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(bg.stderr.String(), "reconnecting") {
		t.Errorf("no reconnect was logged:\n%s", bg.stderr.String())
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, bg.stderr.String())
	}
	samePGAcross(t, srv, src, dsrv, dst)
}

// readPG reads a table through the postgres connector, in canonical values.
func readPG(t *testing.T, rawURL string, ns model.Namespace) []model.Row {
	t.Helper()
	ctx := context.Background()
	u, _ := url.Parse(rawURL)
	c, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tbl *model.Table
	for _, x := range tables {
		if x.Namespace == ns {
			tbl = x
		}
	}
	if tbl == nil {
		t.Fatalf("no table %s at %s", ns, errs.Redact(rawURL))
	}
	plan, err := c.Plan(ctx, []*model.Table{tbl}, connector.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []model.Row
	for _, p := range plan.Partitions {
		if err := c.ReadPartition(ctx, tbl, p, "", func(b *model.RowBatch) error { rows = append(rows, b.Rows...); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

func TestPostgresFakeToPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	dst := srv.CreateDatabase(t, "fakedst")
	srcURL := "fake://?tables=2&rows=3000&seed=3&changes=2000"
	dir := t.TempDir()
	mustFerry(t, "sync", srcURL, srv.URL(dst), "--state-dir", dir, "--until", "caught-up", "--partition-rows", "1000")
	want, err := fake.Expected(srcURL, 2000)
	if err != nil {
		t.Fatal(err)
	}
	schema := fake.TableSchema()
	for ns, rows := range want {
		got := readPG(t, srv.URL(dst), ns)
		if len(got) != len(rows) {
			t.Fatalf("%s: destination has %d rows, source %d", ns, len(got), len(rows))
		}
		for _, row := range got {
			id := row[0].(int64)
			exp, ok := rows[id]
			if !ok {
				t.Fatalf("%s: key %d is at the destination but not at the source", ns, id)
			}
			for i, c := range schema.Columns {
				v, err := model.Coerce(c.Type, row[i])
				if err != nil {
					t.Fatalf("%s key %d column %s: %v", ns, id, c.Name, err)
				}
				a, _ := model.AppendCanonical(nil, c.Type, v)
				b, _ := model.AppendCanonical(nil, c.Type, exp[i])
				if !bytes.Equal(a, b) {
					t.Fatalf("%s key %d column %s: destination has %#v, source has %#v", ns, id, c.Name, v, exp[i])
				}
			}
		}
	}
	// The fake reads its state after every change with snapshot=head.
	v := mustFerry(t, "verify", srcURL+"&snapshot=head", srv.URL(dst))
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// TestFerryLeavesALocalServerCores: a flow into a PostgreSQL server on this
// machine runs ferry on half the cores (internal/cputune) and says so; a
// GOMAXPROCS of the user's wins, and a flow without a server here (fake
// into SQLite) keeps Go's default.
func TestFerryLeavesALocalServerCores(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one core: nothing to leave")
	}
	const msg = "a database server of the flow runs on this machine: ferry leaves it cores"
	srv := pgtest.Shared(t)
	srcURL := "fake://?tables=1&rows=500&seed=5"
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set for the tests: ferry keeps it")
	}
	r := ferry(t, "sync", srcURL, srv.URL(srv.CreateDatabase(t, "cores")), "--state-dir", t.TempDir(),
		"--until", "caught-up", "--log-format", "json")
	if r.code != 0 {
		t.Fatalf("ferry sync: %s", r)
	}
	line := r.logLine(msg)
	if line == nil {
		t.Fatalf("no %q line into a server on 127.0.0.1:\n%s", msg, r.stderr)
	}
	if got, want := line["ferry_cores"], float64(max(1, runtime.NumCPU()/2)); got != want {
		t.Fatalf("ferry_cores = %v, want %v (half of %d)", got, want, runtime.NumCPU())
	}

	r = ferryWithEnv(t, []string{"GOMAXPROCS=2"}, "sync", srcURL, srv.URL(srv.CreateDatabase(t, "cores2")), "--state-dir", t.TempDir(),
		"--until", "caught-up", "--log-format", "json")
	if r.code != 0 || r.logLine(msg) != nil {
		t.Fatalf("with GOMAXPROCS=2 ferry must keep it: %s", r)
	}

	r = mustFerry(t, "sync", srcURL, "sqlite://"+filepath.Join(t.TempDir(), "c.db"), "--state-dir", t.TempDir(),
		"--until", "caught-up", "--log-format", "json")
	if r.logLine(msg) != nil {
		t.Fatalf("fake into SQLite has no server here, yet: %s", r)
	}
}

func TestPostgresToSQLiteAndFiles(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "exportsrc")
	pgShop(t, srv, src, 3000)
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	mustFerry(t, "sync", srv.URL(src), "sqlite://"+db, "--state-dir", dir, "--partition-rows", "700", "--mode", "snapshot")
	v := mustFerry(t, "verify", srv.URL(src), "sqlite://"+db)
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify postgres vs sqlite: %s", v)
	}
	var n int
	if err := openSQLite(t, db).QueryRow(`SELECT count(*) FROM orders WHERE length(note) = 6400`).Scan(&n); err != nil || n != 6 {
		t.Fatalf("long notes in SQLite: %d, %v", n, err)
	}
	for _, format := range []string{"jsonl", "csv"} {
		out := filepath.Join(dir, "export-"+format)
		dst := "file://" + out + "?format=" + format
		mustFerry(t, "sync", srv.URL(src), dst, "--state-dir", dir)
		v := mustFerry(t, "verify", srv.URL(src), dst)
		if !strings.Contains(v.stdout, "all 2 table(s) equal") {
			t.Fatalf("verify postgres vs %s: %s", format, v)
		}
	}
	lines := readLines(t, filepath.Join(dir, "export-jsonl", "public.orders.jsonl"))
	if len(lines) != 3000 || !strings.Contains(lines[0], `"amount":1.25`) && !strings.Contains(lines[0], `"amount":"1.25"`) {
		t.Fatalf("public.orders.jsonl: %d lines, first %s", len(lines), lines[0])
	}
}

func TestPostgresBadInput(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "badsrc"), srv.CreateDatabase(t, "baddst")
	pgShop(t, srv, src, 100)
	srv.Exec(t, src, `CREATE TABLE keyless (a int, b text); INSERT INTO keyless VALUES (1, 'x')`)
	dir := t.TempDir()
	// Every refusal comes before the destination is touched.
	noRows := func(t *testing.T) {
		t.Helper()
		conn := srv.Connect(t, dst)
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid
			WHERE n.nspname = '_ferry' OR c.relname = 'orders'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("something was written at the destination (%d objects, %v)", n, err)
		}
	}
	expect := func(t *testing.T, code int, wants []string, args ...string) result {
		t.Helper()
		r := ferry(t, args...)
		if r.code != code {
			t.Fatalf("want exit %d, got %s", code, r)
		}
		for _, w := range wants {
			if !strings.Contains(r.stderr, w) {
				t.Fatalf("stderr lacks %q:\n%s", w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, pgtest.Password) {
			t.Fatalf("the password is in stderr:\n%s", r.stderr)
		}
		noRows(t)
		return r
	}

	t.Run("wal_level replica", func(t *testing.T) {
		rs := pgtest.Start(t, pgtest.WALLevel("replica"))
		db := rs.CreateDatabase(t, "walsrc")
		pgShop(t, rs, db, 10)
		expect(t, 2, []string{"wal_level = logical", "restart"}, "sync", rs.URL(db), srv.URL(dst), "--state-dir", dir, "--tables", "orders")
	})
	t.Run("no free replication slot", func(t *testing.T) {
		rs := pgtest.Start(t, pgtest.Setting("max_replication_slots=1"))
		db := rs.CreateDatabase(t, "slotsrc")
		pgShop(t, rs, db, 10)
		rs.Exec(t, db, `SELECT pg_create_logical_replication_slot('someone_else', 'pgoutput')`)
		expect(t, 2, []string{"every replication slot", "someone_else (inactive)", "max_replication_slots"}, "sync", rs.URL(db), srv.URL(dst), "--state-dir", dir, "--tables", "orders")
		// The failed plan left no publication behind.
		conn := rs.Connect(t, db)
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_publication`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("publications left behind: %d, %v", n, err)
		}
	})
	t.Run("tables owned by another role", func(t *testing.T) {
		role := srv.CreateUser(t, "notowner", "pw-notowner", "REPLICATION")
		srv.Exec(t, src, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+role)
		expect(t, 2, []string{"does not own public.orders", "publication="}, "sync", srv.UserURL(role, "pw-notowner", src), srv.URL(dst), "--state-dir", dir, "--tables", "orders")
	})
	t.Run("role without REPLICATION", func(t *testing.T) {
		role := srv.CreateUser(t, "noreplication", "pw-noreplication")
		srv.Exec(t, src, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+role)
		expect(t, 2, []string{"REPLICATION", "ALTER ROLE " + role + " REPLICATION"}, "sync", srv.UserURL(role, "pw-noreplication", src), srv.URL(dst), "--state-dir", dir, "--tables", "orders")
	})
	t.Run("no SELECT privilege", func(t *testing.T) {
		role := srv.CreateUser(t, "noselect", "pw-noselect", "REPLICATION")
		expect(t, 2, []string{"permission denied", "GRANT SELECT ON public.orders TO"}, "sync", srv.UserURL(role, "pw-noselect", src), srv.URL(dst), "--state-dir", dir, "--tables", "orders", "--mode", "snapshot")
	})
	t.Run("table without primary key", func(t *testing.T) {
		expect(t, 2, []string{"keyless", "primary key"}, "sync", srv.URL(src), srv.URL(dst), "--state-dir", dir, "--tables", "keyless")
	})
	t.Run("wrong password", func(t *testing.T) {
		u := srv.UserURL("postgres", "not-the-password-"+pgtest.Password, src)
		r := expect(t, 2, []string{"authentication failed", "password"}, "sync", u, srv.URL(dst), "--state-dir", dir)
		if strings.Contains(r.stderr, "not-the-password") {
			t.Fatalf("the wrong password is in stderr:\n%s", r.stderr)
		}
	})
	t.Run("unreachable host", func(t *testing.T) {
		u := strings.Replace(srv.URL(src), fmt.Sprintf(":%d/", srv.Port), ":1/", 1)
		expect(t, 2, []string{"cannot reach PostgreSQL at 127.0.0.1:1"}, "sync", u, srv.URL(dst), "--state-dir", dir)
	})
	t.Run("database does not exist", func(t *testing.T) {
		expect(t, 2, []string{`database "nosuchdb" does not exist`}, "sync", srv.URL("nosuchdb"), srv.URL(dst), "--state-dir", dir)
	})
	t.Run("slot in use", func(t *testing.T) {
		d2 := srv.CreateDatabase(t, "slotdst")
		args := []string{"sync", srv.URL(src), srv.URL(d2), "--name", "busy", "--tables", "orders", "--log-format", "json", "--progress", "none"}
		bg := startFerry(t, append(args, "--state-dir", filepath.Join(dir, "one"))...)
		if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
			t.Fatalf("first ferry did not reach CDC:\n%s", bg.stderr.String())
		}
		// The same flow from another state directory meets the active slot.
		r := ferry(t, append(args, "--state-dir", filepath.Join(dir, "two"))...)
		if r.code != 2 || !strings.Contains(r.stderr, "replication slot ferry_busy is in use by another process") {
			t.Fatalf("want exit 2 naming the busy slot, got %s", r)
		}
		bg.signal(t, os.Interrupt)
	})
}

// What a connector logs comes out in the format the user asked for, with
// secrets scrubbed: here PostgreSQL's warning about an inactive ferry slot
// (another flow's, left behind) under --log-format json.
func TestPostgresConnectorLogsFollowLogFormat(t *testing.T) {
	srv := pgtest.Start(t)
	src := srv.CreateDatabase(t, "logsrc")
	pgShop(t, srv, src, 200)
	srv.Exec(t, src, `SELECT pg_create_logical_replication_slot('ferry_left_behind', 'pgoutput')`)
	dir := t.TempDir()
	r := mustFerry(t, "sync", srv.URL(src), "sqlite://"+filepath.Join(dir, "dst.db"), "--state-dir", dir,
		"--until", "caught-up", "--log-format", "json", "--progress", "none")
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON under --log-format json: %q", line)
		}
		if m["slot"] == "ferry_left_behind" && m["level"] == "WARN" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no JSON warning about the inactive slot ferry_left_behind:\n%s", r.stderr)
	}
}

// --retry-timeout bounds how long ferry rides out a destination outage: with
// 2s, a destination that stays down ends the flow with exit 1 and a message
// that names the setting, and a run after the outage resumes and finishes.
func TestPostgresRetryTimeoutFlag(t *testing.T) {
	srv := pgtest.Start(t)
	dst := srv.CreateDatabase(t, "retrydst")
	srcURL := "fake://?tables=1&rows=2000&seed=5&changes=3000&changes_per_sec=500"
	dir := t.TempDir()
	args := []string{"sync", srcURL, srv.URL(dst), "--state-dir", dir, "--until", "caught-up", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, append(args, "--retry-timeout", "2s")...)
	if !bg.waitFor(t, "change data capture starting", 2*time.Minute) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	srv.Down(t, "fast")
	down := time.Now()
	select {
	case <-bg.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("ferry still runs 2 minutes into an outage with --retry-timeout 2s:\n%s", bg.stderr.String())
	}
	took := time.Since(down)
	if code := bg.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(bg.stderr.String(), "--retry-timeout") {
		t.Fatalf("exit %d after %s; want 1 and an error naming --retry-timeout:\n%s", code, took, bg.stderr.String())
	}
	t.Logf("gave up %s after the destination went down", took.Round(100*time.Millisecond))
	srv.Up(t)
	mustFerry(t, args...)
	v := mustFerry(t, "verify", srcURL+"&snapshot=head", srv.URL(dst))
	if !strings.Contains(v.stdout, "all 1 table(s) equal") {
		t.Fatalf("verify after resuming: %s", v)
	}
}

// --restart starts the flow over into emptied destination tables: rows the
// source deleted after the first run do not survive at the destination.
func TestPostgresRestartEmptiesTheDestination(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "restartsrc")
	pgShop(t, srv, src, 2000)
	dstPG := srv.CreateDatabase(t, "restartdst")
	dir := t.TempDir()
	dsts := []string{srv.URL(dstPG), "sqlite://" + filepath.Join(dir, "dst.db"), "file://" + filepath.Join(dir, "files") + "?format=jsonl"}
	for _, dst := range dsts {
		mustFerry(t, "sync", srv.URL(src), dst, "--state-dir", dir, "--mode", "snapshot")
	}
	srv.Exec(t, src, `DELETE FROM orders WHERE id % 10 = 0; DELETE FROM lines WHERE line = 2`)
	for _, dst := range dsts {
		r := mustFerry(t, "sync", srv.URL(src), dst, "--state-dir", dir, "--mode", "snapshot", "--restart", "--log-format", "json")
		if !strings.HasPrefix(dst, "file:") && r.logLine("emptied the destination tables to start the flow over") == nil {
			t.Errorf("%s: --restart did not say it emptied the tables:\n%s", dst, r.stderr)
		}
		v := ferry(t, "verify", srv.URL(src), dst)
		if v.code != 0 || !strings.Contains(v.stdout, "all 2 table(s) equal") {
			t.Errorf("%s after --restart: %s", dst, v)
		}
	}
}

// A column added at the source during CDC reaches a SQLite destination, and
// a run killed right after it resumes and carries the column's later values.
func TestPostgresAddedColumnIntoSQLiteSurvivesAKill(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "addcolsrc")
	pgShop(t, srv, src, 500)
	dir := t.TempDir()
	db := filepath.Join(dir, "dst.db")
	args := []string{"sync", srv.URL(src), "sqlite://" + db, "--state-dir", dir, "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `ALTER TABLE orders ADD COLUMN coupon text; UPDATE orders SET coupon = 'SPRING' WHERE id <= 10`)
	if !bg.waitFor(t, "applied schema change", 30*time.Second) {
		t.Fatalf("the added column was not applied:\n%s", bg.stderr.String())
	}
	bg.kill(t)
	srv.Exec(t, src, `UPDATE orders SET coupon = 'AUTUMN' WHERE id > 490`)
	mustFerry(t, append(args, "--until", "caught-up")...)
	var spring, autumn int
	if err := openSQLite(t, db).QueryRow(`SELECT count(*) FILTER (WHERE coupon = 'SPRING'), count(*) FILTER (WHERE coupon = 'AUTUMN') FROM orders`).Scan(&spring, &autumn); err != nil || spring != 10 || autumn != 10 {
		t.Fatalf("destination rows with the added column's values: SPRING %d, AUTUMN %d (%v); want 10 and 10", spring, autumn, err)
	}
	v := mustFerry(t, "verify", srv.URL(src), "sqlite://"+db)
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// TestKeywordValueConnectionString: a libpq keyword/value string works as a
// PostgreSQL source (plan, a snapshot into SQLite, verify) and destination,
// with a password no URL could hold unencoded; the flow is named after the
// postgres scheme and the password appears nowhere in what ferry prints or
// keeps.
func TestKeywordValueConnectionString(t *testing.T) {
	srv := pgtest.Shared(t)
	const password = `Sup3r/Se#c?r@t 'q\`
	var role string
	// Registered first, so it runs after the databases (holding the
	// role's tables) are dropped.
	t.Cleanup(func() {
		if role != "" {
			srv.Exec(t, "postgres", "DROP ROLE IF EXISTS "+role)
		}
	})
	role = srv.CreateUser(t, "kv", password, "SUPERUSER")
	src := srv.CreateDatabase(t, "kvsrc")
	dstDB := srv.CreateDatabase(t, "kvdst")
	pgShop(t, srv, src, 3000)
	quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password) + "'"
	kv := func(db string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable", srv.Port, role, quoted, db)
	}
	dir := t.TempDir()
	noPassword := func(r result) {
		t.Helper()
		for _, part := range []string{"Sup3r", "r@t"} {
			if strings.Contains(r.stdout+r.stderr, part) {
				t.Fatalf("the password (%q) is printed:\n%s", part, r)
			}
		}
	}

	r := mustFerry(t, "plan", kv(src))
	noPassword(r)
	if !strings.Contains(r.stdout, "public.orders") || !strings.Contains(r.stdout, "public.lines") || !strings.Contains(r.stdout, "change data capture: yes") {
		t.Fatalf("plan of the keyword/value source:\n%s", r)
	}

	db := filepath.Join(dir, "dst.db")
	r = mustFerry(t, "sync", kv(src), "sqlite://"+db, "--state-dir", dir, "--mode", "snapshot", "--log-format", "json")
	noPassword(r)
	var orders, lines int
	if err := openSQLite(t, db).QueryRow(`SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM lines)`).Scan(&orders, &lines); err != nil || orders != 3000 || lines != 3000 {
		t.Fatalf("sqlite has %d orders and %d lines, want 3000 and 3000 (%v)", orders, lines, err)
	}
	noPassword(mustFerry(t, "verify", kv(src), "sqlite://"+db))
	// The flow's name comes from the scheme the string selects, and its
	// state keeps the string redacted.
	states, _ := filepath.Glob(filepath.Join(dir, "postgres-to-sqlite-*.db"))
	if len(states) != 1 {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("want one state file postgres-to-sqlite-*.db, have %v", entries)
	}
	if b, err := os.ReadFile(states[0]); err != nil || bytes.Contains(b, []byte("Sup3r")) {
		t.Fatalf("the state file %s keeps the password (or cannot be read: %v)", states[0], err)
	}

	// As a destination too.
	r = mustFerry(t, "sync", kv(src), kv(dstDB), "--state-dir", dir, "--mode", "snapshot")
	noPassword(r)
	var n int
	if err := srv.Connect(t, dstDB).QueryRow(context.Background(), `SELECT count(*) FROM public.orders`).Scan(&n); err != nil || n != 3000 {
		t.Fatalf("the keyword/value destination has %d orders, want 3000 (%v)", n, err)
	}

	// A wrong password is an authentication error naming the user, not the
	// password.
	wrong := strings.Replace(kv(src), quoted, `'Sup3r wrong'`, 1)
	r = ferry(t, "plan", wrong)
	noPassword(r)
	if r.code != 2 || !strings.Contains(r.stderr, "authentication failed for user "+`"`+role+`"`) {
		t.Fatalf("want exit 2 and an authentication error, got %s", r)
	}
}
