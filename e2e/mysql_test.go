package e2e

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// The MySQL tests run against private MariaDB servers the harness starts
// (the machine's own server on port 3306 is never touched). Most share one
// server, each in its own databases.

func mysqlDatabase(t *testing.T, s *mysqltest.Server, prefix string) string {
	t.Helper()
	return s.CreateDatabase(t, prefix)
}

func requireMariaDB(t *testing.T) {
	t.Helper()
	if !mysqltest.Available() {
		t.Skip("MariaDB is not installed (Debian package mariadb-server)")
	}
}

// shopSchema is a small shop: a table with an auto-increment key and many
// types, and one with a composite key.
const shopSchema = `
CREATE TABLE orders (
	id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
	customer varchar(40) NOT NULL,
	amount decimal(12,2),
	ratio float,
	status enum('new','paid','shipped','returned'),
	flags set('gift','rush','fragile'),
	note text,
	data json,
	created datetime(6),
	updated timestamp(6) NULL DEFAULT NULL,
	ship_day date,
	raw varbinary(16)
);
CREATE TABLE items (
	order_id bigint NOT NULL,
	line int NOT NULL,
	sku char(8) NOT NULL,
	qty smallint unsigned,
	price decimal(10,2),
	PRIMARY KEY (order_id, line)
);
INSERT INTO orders (customer, amount, ratio, status, flags, note, data, created, updated, ship_day, raw)
	SELECT CONCAT('customer ', seq, IF(seq %% 7 = 0, ' 😀', '')), seq * 1.25, seq / 3, ELT(1 + seq %% 4, 'new','paid','shipped','returned'),
		IF(seq %% 3 = 0, 'gift,rush', ''), IF(seq %% 5 = 0, NULL, REPEAT('n', seq %% 50)),
		JSON_OBJECT('n', seq, 'tags', JSON_ARRAY('a', seq %% 10)), '2024-01-01 00:00:00' + INTERVAL seq SECOND,
		'2024-06-01 00:00:00.123456' + INTERVAL seq MINUTE, '2024-01-01' + INTERVAL seq %% 365 DAY, UNHEX(LPAD(HEX(seq), 8, '0'))
	FROM seq_1_to_%d;
INSERT INTO items SELECT 1 + seq DIV 3, seq %% 3, CONCAT('SKU', LPAD(seq %% 1000, 5, '0')), seq %% 20, seq %% 100 + 0.99 FROM seq_0_to_%d;`

func createShop(t *testing.T, s *mysqltest.Server, db string, orders int) {
	t.Helper()
	s.Exec(t, "USE `"+db+"`; "+fmt.Sprintf(shopSchema, orders, orders*3-1))
}

// writer changes the shop until stopped: inserts, updates (some moving a
// composite key), deletes, some in multi-statement transactions.
type writer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	ops  atomic.Int64
	errs atomic.Int64
	last atomic.Value
}

func startWriter(t *testing.T, s *mysqltest.Server, db string, maxID int64) *writer {
	t.Helper()
	w := &writer{db: s.Connect(t, db), stop: make(chan struct{}), done: make(chan struct{})}
	w.db.SetMaxOpenConns(2)
	go func() {
		defer close(w.done)
		r := rand.New(rand.NewPCG(uint64(maxID), 7))
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			id := 1 + r.Int64N(maxID)
			var q []string
			switch r.IntN(10) {
			case 0, 1, 2:
				q = []string{fmt.Sprintf("INSERT INTO orders (customer, amount, status, data, created) VALUES ('new %d', %d.5, 'new', '{\"w\": %d}', NOW(6))", id, id, id)}
			case 3, 4, 5:
				q = []string{fmt.Sprintf("UPDATE orders SET amount = amount + 1, note = CONCAT(COALESCE(note, ''), 'u'), updated = NOW(6), flags = 'fragile' WHERE id = %d", id)}
			case 6:
				q = []string{fmt.Sprintf("DELETE FROM orders WHERE id = %d", id)}
			case 7:
				q = []string{fmt.Sprintf("UPDATE items SET line = line + 10, qty = qty + 1 WHERE order_id = %d AND line < 10", id)}
			case 8:
				q = []string{fmt.Sprintf("DELETE FROM items WHERE order_id = %d", id)}
			case 9:
				q = []string{"BEGIN",
					fmt.Sprintf("INSERT INTO items VALUES (%d, %d, 'TX', 1, 1.00) ON DUPLICATE KEY UPDATE qty = qty + 1", id, 100+r.IntN(50)),
					fmt.Sprintf("UPDATE orders SET status = 'paid' WHERE id = %d", id), "COMMIT"}
			}
			for _, s := range q {
				if _, err := w.db.Exec(s); err != nil {
					w.errs.Add(1)
					w.last.Store(err)
				}
			}
			w.ops.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// tableDigest hashes every row of a table in key order.
func tableDigest(t *testing.T, db *sql.DB, table, order string) (string, int) {
	t.Helper()
	// A parameter makes the query a prepared one: the binary protocol keeps
	// FLOAT values exact.
	rows, err := db.Query("SELECT * FROM "+table+" WHERE 1 = ? ORDER BY "+order, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	h := sha256.New()
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if v == nil {
				h.Write([]byte{0})
			} else {
				fmt.Fprintf(h, "%d:", len(v))
				h.Write(v)
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func compareShops(t *testing.T, s *mysqltest.Server, src, dst string) {
	t.Helper()
	a, b := s.Connect(t, src), s.Connect(t, dst)
	for _, tbl := range []struct{ name, order string }{{"orders", "id"}, {"items", "order_id, line"}} {
		ha, na := tableDigest(t, a, tbl.name, tbl.order)
		hb, nb := tableDigest(t, b, tbl.name, tbl.order)
		if ha != hb || na != nb {
			t.Fatalf("%s: source has %d rows (digest %s), destination %d (digest %s)", tbl.name, na, ha[:12], nb, hb[:12])
		}
		t.Logf("%s: %d rows equal", tbl.name, na)
	}
}

// TestMySQLToMySQLWithWritesDuringCopyAndCDC copies a live database: a
// writer changes it during the copy and during CDC; once the writer stops
// and ferry catches up, both sides are equal row for row.
func TestMySQLToMySQLWithWritesDuringCopyAndCDC(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	src, dst := mysqlDatabase(t, s, "live_src"), mysqlDatabase(t, s, "live_dst")
	createShop(t, s, src, 8000)
	dir := t.TempDir()
	w := startWriter(t, s, src, 8000)
	args := []string{"sync", s.URL(src), s.URL(dst), "--state-dir", dir, "--parallel", "3", "--partition-rows", "1500",
		"--batch-rows", "400", "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	time.Sleep(1500 * time.Millisecond) // writes during CDC
	w.halt()
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT:\n%s", code, bg.stderr.String())
	}
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	t.Logf("writer: %d operations (%d refused by the database, such as duplicate keys)", w.ops.Load(), w.errs.Load())
	if w.ops.Load() < 100 {
		t.Fatalf("the writer only managed %d operations; the test proves little", w.ops.Load())
	}
	if fin := r.logLine("flow finished"); fin == nil {
		t.Fatalf("no final line:\n%s", r)
	}
	compareShops(t, s, src, dst)
	v := mustFerry(t, "verify", s.URL(src), s.URL(dst))
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// TestMySQLKillDuringCopyAndCDCThenResume kills ferry with SIGKILL during
// the copy and during CDC while a writer runs; the reruns converge.
func TestMySQLKillDuringCopyAndCDCThenResume(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	src, dst := mysqlDatabase(t, s, "kill_src"), mysqlDatabase(t, s, "kill_dst")
	createShop(t, s, src, 12000)
	dir := t.TempDir()
	w := startWriter(t, s, src, 12000)
	// The copy runs write through a narrow link, so their kills land in the
	// copy however fast the machine (a fast one finished the copy of 12,000
	// rows before the first kill); the link is wide for the CDC runs.
	px := faults.NewProxy(t, "mysql-kill-destination", fmt.Sprintf("127.0.0.1:%d", s.Port))
	px.Bandwidth(t, 100, "upstream")
	args := []string{"sync", s.URL(src), px.Rewrite(s.URL(dst)), "--state-dir", dir, "--parallel", "2", "--partition-rows", "1000",
		"--batch-rows", "200", "--log-format", "json"}
	var inCopy, inCDC, resumedRuns int
	dstDB := s.Connect(t, dst)
	const copied = `SELECT (SELECT COUNT(*) FROM orders) + (SELECT COUNT(*) FROM items)`
	for i, p := range []struct {
		cdc   bool
		delay time.Duration
	}{{false, 300 * time.Millisecond}, {false, 150 * time.Millisecond}, {true, 400 * time.Millisecond}, {true, 800 * time.Millisecond}} {
		if p.cdc {
			px.Clear()
		}
		before := max(mysqlCount(dstDB, copied), 0)
		bg := startFerry(t, args...)
		if p.cdc {
			if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
				t.Fatalf("run %d: CDC never started:\n%s", i, bg.stderr.String())
			}
		} else {
			if !bg.waitFor(t, "copy starting", 60*time.Second) {
				t.Fatalf("run %d never started copying:\n%s", i, bg.stderr.String())
			}
			// Killed once this run has committed rows: the next run has
			// progress to resume from, however the partitions are ordered
			// and however fast the machine.
			deadline := time.Now().Add(time.Minute)
			for mysqlCount(dstDB, copied) <= before {
				if time.Now().After(deadline) {
					t.Fatalf("run %d committed no rows in a minute:\n%s", i, bg.stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		time.Sleep(p.delay)
		cdc := strings.Contains(bg.stderr.String(), "change data capture starting")
		if !bg.kill(t) {
			t.Fatalf("run %d ended before the kill:\n%s", i, bg.stderr.String())
		}
		if cdc {
			inCDC++
		} else {
			inCopy++
		}
		out := bg.stderr.String()
		if i > 0 && strings.Contains(out, `"msg":"copy starting"`) && (!strings.Contains(out, `"skipped":0`) || !strings.Contains(out, `"resumed":0`)) {
			resumedRuns++
		}
	}
	w.halt()
	mustFerry(t, append(args, "--until", "caught-up")...)
	t.Logf("kills during the copy %d, during CDC %d; writer %d operations", inCopy, inCDC, w.ops.Load())
	if inCopy == 0 || inCDC == 0 {
		t.Fatalf("kills during the copy %d, during CDC %d: both are needed", inCopy, inCDC)
	}
	if inCopy > 1 && resumedRuns == 0 {
		t.Fatal("no rerun after a kill during the copy skipped or resumed a partition")
	}
	compareShops(t, s, src, dst)
}

// TestMySQLServerRestartDuringCDC restarts the source server under a
// running flow: ferry reconnects and loses nothing.
func TestMySQLServerRestartDuringCDC(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Start(t)
	shop, cp := s.CreateDatabase(t, "shop"), s.CreateDatabase(t, "copy")
	createShop(t, s, shop, 2000)
	dir := t.TempDir()
	args := []string{"sync", s.URL(shop), s.URL(cp), "--state-dir", dir, "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	s.Exec(t, "INSERT INTO `"+shop+"`.orders (customer) VALUES ('before the restart')")
	time.Sleep(300 * time.Millisecond)
	s.Restart(t, "immediate")
	s.Exec(t, "INSERT INTO `"+shop+"`.orders (customer) VALUES ('after the restart')", "UPDATE `"+shop+"`.items SET qty = 99 WHERE order_id < 50")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(bg.stderr.String(), "reconnecting") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(bg.stderr.String(), "reconnecting") {
		t.Fatalf("ferry did not report the lost connection:\n%s", bg.stderr.String())
	}
	time.Sleep(2 * time.Second)
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT:\n%s", code, bg.stderr.String())
	}
	mustFerry(t, append(args, "--until", "caught-up")...)
	compareShops(t, s, shop, cp)
}

// TestMySQLSchemaChangesDuringCDC: added, dropped, renamed and widened
// columns and a truncate reach the destination in stream order; a
// narrowing stops the flow with the column and the change.
func TestMySQLSchemaChangesDuringCDC(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	src, dst := mysqlDatabase(t, s, "ddl_src"), mysqlDatabase(t, s, "ddl_dst")
	createShop(t, s, src, 500)
	dir := t.TempDir()
	args := []string{"sync", s.URL(src), s.URL(dst), "--state-dir", dir, "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	s.Exec(t, "USE `"+src+"`; ALTER TABLE orders ADD COLUMN coupon varchar(20) NULL; UPDATE orders SET coupon = 'SPRING' WHERE id <= 10")
	if !bg.waitFor(t, "applied schema change", 30*time.Second) {
		t.Fatalf("the added column was not applied:\n%s", bg.stderr.String())
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT:\n%s", code, bg.stderr.String())
	}
	mustFerry(t, append(args, "--until", "caught-up")...)
	var n int
	if err := s.Connect(t, dst).QueryRow("SELECT count(*) FROM orders WHERE coupon = 'SPRING'").Scan(&n); err != nil || n != 10 {
		t.Fatalf("destination rows with the added column's value: %d, %v", n, err)
	}
	compareShops(t, s, src, dst)

	// A dropped, a renamed and widened, an added NOT NULL column with a
	// default and a widened one, then a truncate: followed in order.
	s.Exec(t, "USE `"+src+"`; ALTER TABLE items DROP COLUMN price; INSERT INTO items VALUES (1, 77, 'X', 1)",
		"USE `"+src+"`; ALTER TABLE items CHANGE qty quantity int unsigned; UPDATE items SET quantity = quantity + 1 WHERE order_id < 20",
		"USE `"+src+"`; ALTER TABLE orders ADD COLUMN region varchar(10) NOT NULL DEFAULT 'eu', MODIFY customer varchar(80) NOT NULL; UPDATE orders SET region = 'us' WHERE id <= 3",
		"USE `"+src+"`; INSERT INTO items VALUES (900001, 1, 'before', 1); TRUNCATE TABLE items; INSERT INTO items VALUES (2, 1, 'after', 5)")
	mustFerry(t, append(args, "--until", "caught-up")...)
	compareShops(t, s, src, dst)
	var eu, items int
	if err := s.Connect(t, dst).QueryRow("SELECT (SELECT count(*) FROM orders WHERE region = 'eu'), (SELECT count(*) FROM items)").Scan(&eu, &items); err != nil || eu != 497 || items != 1 {
		t.Fatalf("destination: %d orders in region eu (want 497), %d items (want 1 after the truncate), %v", eu, items, err)
	}

	// A narrowing stops the flow, naming the column and the change, and
	// nothing after it is written.
	s.Exec(t, "USE `"+src+"`; ALTER TABLE orders MODIFY amount decimal(8,2); INSERT INTO orders (customer) VALUES ('after the narrowing')")
	r := ferry(t, append(args, "--until", "caught-up")...)
	if r.code != 1 || !strings.Contains(r.stderr, "amount") || !strings.Contains(r.stderr, "decimal(8,2)") {
		t.Fatalf("a narrowed column: want exit 1 naming the column and its new type, got %s", r)
	}
	var after int
	if err := s.Connect(t, dst).QueryRow("SELECT count(*) FROM orders WHERE customer = 'after the narrowing'").Scan(&after); err != nil || after != 0 {
		t.Fatalf("a row after the refused change reached the destination: %d, %v", after, err)
	}
}

// TestFakeToMySQL writes the fake source's rows and changes into MySQL and
// compares every value with what the generator says the source holds.
func TestFakeToMySQL(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	dst := mysqlDatabase(t, s, "fake_dst")
	dir := t.TempDir()
	src := "fake://?tables=2&rows=3000&changes=2000&seed=3"
	mustFerry(t, "sync", src, s.URL(dst), "--state-dir", dir, "--partition-rows", "700", "--until", "caught-up")
	compareMySQLWithFake(t, s.Connect(t, dst), src, 2000)
	v := mustFerry(t, "verify", strings.Replace(src, "seed=3", "seed=3&snapshot=head", 1), s.URL(dst))
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

func compareMySQLWithFake(t *testing.T, db *sql.DB, fakeURL string, at int64) {
	t.Helper()
	want, err := fake.Expected(fakeURL, at)
	if err != nil {
		t.Fatal(err)
	}
	schema := fake.TableSchema()
	var names []string
	for _, c := range schema.Columns {
		names = append(names, "`"+c.Name+"`")
	}
	for ns, rows := range want {
		res, err := db.Query("SELECT "+strings.Join(names, ",")+" FROM `"+ns.Table+"` WHERE 1 = ?", 1)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for res.Next() {
			vals := make([]any, len(schema.Columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := res.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			id, _ := model.Coerce(schema.Columns[0].Type, vals[0])
			exp, ok := rows[id.(int64)]
			if !ok {
				t.Fatalf("%s: key %v is at the destination but not at the source", ns, id)
			}
			seen++
			for i, c := range schema.Columns {
				got, err := model.Coerce(c.Type, vals[i])
				if err != nil {
					t.Fatalf("%s key %v column %s: %v", ns, id, c.Name, err)
				}
				a, _ := model.AppendCanonical(nil, c.Type, got)
				b, _ := model.AppendCanonical(nil, c.Type, exp[i])
				if string(a) != string(b) {
					t.Fatalf("%s key %v column %s: destination has %#v, source has %#v", ns, id, c.Name, got, exp[i])
				}
			}
		}
		res.Close()
		if seen != len(rows) {
			t.Fatalf("%s: destination has %d rows, source %d", ns, seen, len(rows))
		}
	}
}

// TestMySQLToFilesAndSQLite copies MySQL into JSON Lines files and into
// SQLite; verify reads every value back.
func TestMySQLToFilesAndSQLite(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	src := mysqlDatabase(t, s, "export")
	createShop(t, s, src, 1500)
	s.Exec(t, "USE `"+src+"`; CREATE TABLE edge (id int PRIMARY KEY, b tinyint(1), big bigint unsigned, d decimal(65,30), f float, dbl double,"+
		" bin binary(4), bits bit(10), y year, t time(6), e enum('a','😀 b'), j json, z date);"+
		"INSERT INTO edge VALUES (1, 1, 18446744073709551615, 12345678901234567890123456789012345.123456789012345678901234567891, 3.4028234663852886e38, -1.7976931348623157e308,"+
		" X'00ff0000', b'1010101010', 1901, '23:59:59.999999', '😀 b', '{\"x\": [1, \"é\"]}', '0001-01-01'), (2, 0, 0, -1, -1.5, 5e-324, X'00000000', b'0', 2155, '00:00:00', 'a', '[]', '9999-12-31')")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	files := "file://" + out + "?format=jsonl"
	mustFerry(t, "sync", s.URL(src), files, "--state-dir", dir, "--partition-rows", "500")
	if lines := readLines(t, filepath.Join(out, src+".orders.jsonl")); len(lines) != 1500 {
		t.Fatalf("%s.orders.jsonl has %d lines, want 1500", src, len(lines))
	}
	if v := mustFerry(t, "verify", s.URL(src), files); !strings.Contains(v.stdout, "all 3 table(s) equal") {
		t.Fatalf("verify MySQL vs files: %s", v)
	}
	lite := filepath.Join(dir, "copy.db")
	mustFerry(t, "sync", s.URL(src), "sqlite://"+lite, "--state-dir", dir, "--until", "caught-up")
	if v := mustFerry(t, "verify", s.URL(src), "sqlite://"+lite); !strings.Contains(v.stdout, "all 3 table(s) equal") {
		t.Fatalf("verify MySQL vs SQLite: %s", v)
	}
	var big, dec string
	var bits []byte
	if err := openSQLite(t, lite).QueryRow(`SELECT big, d, bits FROM edge WHERE id = 1`).Scan(&big, &dec, &bits); err != nil {
		t.Fatal(err)
	}
	if big != "18446744073709551615" || dec != "12345678901234567890123456789012345.123456789012345678901234567891" || hex.EncodeToString(bits) != "02aa" {
		t.Fatalf("SQLite holds big %s, d %s, bits %x", big, dec, bits)
	}
	// And back into MySQL from the files.
	back := mysqlDatabase(t, s, "export_back")
	mustFerry(t, "sync", files, s.URL(back), "--state-dir", dir)
	if v := mustFerry(t, "verify", s.URL(src), s.URL(back)); !strings.Contains(v.stdout, "all 3 table(s) equal") {
		t.Fatalf("verify MySQL vs MySQL loaded from files: %s", v)
	}
}

// TestMySQLBadInput: each misconfiguration exits 2 before anything is
// written, says how to fix it, and never prints the password.
func TestMySQLBadInput(t *testing.T) {
	requireMariaDB(t)
	shared := mysqltest.Shared(t)
	db := mysqlDatabase(t, shared, "bad")
	shared.Exec(t, "CREATE TABLE `"+db+"`.t (id int PRIMARY KEY)")
	reader := shared.CreateUser(t, "reader", "hunter2pw", "SELECT ON `"+db+"`.*")
	monitor := shared.CreateUser(t, "monitor", "hunter2pw", "SELECT ON `"+db+"`.*", "BINLOG MONITOR ON *.*")
	var wg sync.WaitGroup
	var noBinlog, statement, minimal *mysqltest.Server
	for _, start := range []func(){
		func() { noBinlog = mysqltest.Start(t, mysqltest.WithoutBinlog()) },
		func() { statement = mysqltest.Start(t, mysqltest.WithBinlogFormat("STATEMENT")) },
		func() { minimal = mysqltest.Start(t, mysqltest.WithRowImage("MINIMAL")) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); start() }()
	}
	wg.Wait()
	shop := map[*mysqltest.Server]string{}
	for _, s := range []*mysqltest.Server{noBinlog, statement, minimal} {
		shop[s] = s.CreateDatabase(t, "shop")
		s.Exec(t, "CREATE TABLE `"+shop[s]+"`.t (id int PRIMARY KEY)")
	}
	dir, state := t.TempDir(), t.TempDir()
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"binlog disabled", noBinlog.URL(shop[noBinlog]), []string{"binary log is disabled", "--log-bin", "--mode snapshot"}},
		{"statement format", statement.URL(shop[statement]), []string{"binlog_format is STATEMENT", "binlog_format = 'ROW'"}},
		{"minimal row image", minimal.URL(shop[minimal]), []string{"binlog_row_image is MINIMAL", "binlog_row_image = 'FULL'"}},
		{"no replication privileges", shared.UserURL(reader, "hunter2pw", db), []string{`"` + reader + `"`, "GRANT REPLICATION SLAVE, BINLOG MONITOR ON"}},
		{"no REPLICATION SLAVE", shared.UserURL(monitor, "hunter2pw", db), []string{"may not read the binlog as a replica", "GRANT REPLICATION SLAVE"}},
		{"wrong password", shared.UserURL(reader, "hunter2wrong", db), []string{`access denied for user "` + reader + `"`, "check the user and password"}},
		{"unreachable host", "mysql://app:hunter2pw@127.0.0.1:1/shop", []string{"cannot reach MySQL at 127.0.0.1:1", "check the host and port"}},
		{"unknown database", shared.URL("no_such_db"), []string{`database "no_such_db" does not exist`}},
		{"unknown parameter", shared.URL(db) + "?zero_date=null", []string{`unknown mysql URL parameter "zero_date"`, "zero_dates"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".db")
			r := ferry(t, "sync", c.src, "sqlite://"+dst, "--state-dir", state)
			if r.code != 2 {
				t.Fatalf("want exit code 2, got %s", r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stdout+r.stderr, "hunter2") {
				t.Errorf("the password is printed:\n%s", r)
			}
			if _, err := os.Stat(dst); err == nil {
				t.Errorf("the destination %s was created", dst)
			}
		})
	}
	// A destination that cannot be reached is refused the same way.
	r := ferry(t, "sync", "fake://?tables=1&rows=10", "mysql://app:hunter2pw@127.0.0.1:1/x", "--state-dir", state)
	if r.code != 2 || !strings.Contains(r.stderr, "cannot reach MySQL") || strings.Contains(r.stderr, "hunter2") {
		t.Fatalf("unreachable destination: %s", r)
	}
	// Failed flows leave no state behind.
	if entries, _ := os.ReadDir(state); len(entries) > 0 {
		t.Errorf("state left behind by failed runs: %v", entries)
	}
	// A snapshot needs no binlog.
	mustFerry(t, "sync", noBinlog.URL(shop[noBinlog]), "sqlite://"+filepath.Join(dir, "snapshot.db"), "--state-dir", state, "--mode", "snapshot")
}
