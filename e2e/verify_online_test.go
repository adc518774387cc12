package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

type onlineVerified struct {
	Equal  bool `json:"equal"`
	Tables []struct {
		Table         string `json:"table"`
		Online        bool   `json:"online"`
		DifferentKeys int    `json:"different_keys"`
		PendingKeys   int    `json:"pending_keys"`
		Rechecks      int    `json:"rechecks"`
		Diffs         []struct {
			Key     string   `json:"key"`
			Kind    string   `json:"kind"`
			Columns []string `json:"columns"`
		} `json:"diffs"`
	} `json:"tables"`
}

func parseVerified(t *testing.T, r result) onlineVerified {
	t.Helper()
	var v onlineVerified
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r)
	}
	return v
}

// TestPostgresVerifyOnline verifies while ferry sync streams a steady write
// load: nothing differs; a row changed at the destination behind the
// flow's back is a difference; a row the flow is held from applying (a
// lock at the destination) differs until the flow applies it, and is then
// not reported.
func TestPostgresVerifyOnline(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "vosrc"), srv.CreateDatabase(t, "vodst")
	pgShop(t, srv, src, 6000)
	srv.Exec(t, src, `CREATE TABLE settings (id int PRIMARY KEY, v text); INSERT INTO settings SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	w := startPGWriter(t, srv.URL(src), 6001)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "vo", "--state-dir", t.TempDir(), "--parallel", "2",
		"--partition-rows", "1500", "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	for w.ops.Load() < 300 {
		time.Sleep(10 * time.Millisecond) // waits for writes, asserts nothing on time
	}
	verifyArgs := []string{"verify", "--online", "--name", "vo", srv.URL(src), srv.URL(dst), "--json", "--log-format", "json"}

	// Under a steady write load: equal.
	r := ferry(t, verifyArgs...)
	if r.code != 0 {
		t.Fatalf("online verify under load: %s", r)
	}
	v := parseVerified(t, r)
	if !v.Equal || len(v.Tables) != 3 || !v.Tables[0].Online {
		t.Fatalf("online verify under load: %s", r)
	}
	t.Logf("under load (%d writes): %s", w.ops.Load(), r.stderr)
	w.halt(t)

	// Changed behind the flow's back: a persistent difference.
	srv.Exec(t, dst, `UPDATE settings SET v = 'tampered' WHERE id = 7`)
	r = ferry(t, verifyArgs...)
	v = parseVerified(t, r)
	if r.code != 1 || v.Equal {
		t.Fatalf("a row changed at the destination: %s", r)
	}
	for _, tb := range v.Tables {
		want := 0
		if tb.Table == "public.settings" {
			want = 1
			if len(tb.Diffs) != 1 || tb.Diffs[0].Key != "id=7" || tb.Diffs[0].Kind != "different" || tb.Rechecks != 3 {
				t.Fatalf("settings: %+v\n%s", tb, r)
			}
		}
		if tb.DifferentKeys != want || tb.PendingKeys != 0 {
			t.Fatalf("%s: %d different, %d pending keys\n%s", tb.Table, tb.DifferentKeys, tb.PendingKeys, r)
		}
	}
	srv.Exec(t, dst, `UPDATE settings SET v = 'v7' WHERE id = 7`)

	// Held by a lock at the destination: differs until the flow applies it.
	ctx := context.Background()
	lock, err := srv.Connect(t, dst).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT * FROM settings WHERE id = 9 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, src, `UPDATE settings SET v = 'changed' WHERE id = 9`)
	vb := startFerry(t, verifyArgs...)
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(vb.stderr.String(), `"table":"public.settings","keys":1`) {
		if vb.hasExited() || time.Now().After(deadline) {
			lock.Rollback(ctx) //nolint:errcheck // failing anyway
			t.Fatalf("verify did not wait for the flow on settings:\n%s", vb.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-vb.done; err != nil {
		t.Fatalf("verify after the flow applied the held row: %v\n%s", err, vb.stderr.String())
	}
	out := vb.stderr.String()
	if !strings.Contains(out, `"equal": true`) {
		t.Fatalf("verify after the flow applied the held row:\n%s", out)
	}
}

type verifiedTable struct {
	Table  string `json:"table"`
	Verify *struct {
		Passes      int64 `json:"passes"`
		RowsChecked int64 `json:"rows_checked"`
		Different   int   `json:"different_keys"`
		Pending     int   `json:"pending_keys"`
		Diffs       []struct {
			Key string `json:"key"`
		} `json:"diffs"`
		Error string `json:"error"`
	} `json:"verify"`
}

// verifiedTables reads each table's background verification from the
// dashboard.
func verifiedTables(t *testing.T, url string) map[string]verifiedTable {
	t.Helper()
	code, body := get(t, url+"api/flow", 4<<20)
	if code != 200 {
		t.Fatalf("GET /api/flow: %d %s", code, body)
	}
	var f struct {
		Tables []verifiedTable `json:"tables"`
	}
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("/api/flow: %v\n%s", err, body)
	}
	out := map[string]verifiedTable{}
	for _, tb := range f.Tables {
		out[tb.Table] = tb
	}
	return out
}

// waitPasses polls the dashboard until table's background verification
// ran at least passes times, and returns the tables then.
func waitPasses(t *testing.T, bg *background, url, table string, passes int64) map[string]verifiedTable {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		tables := verifiedTables(t, url)
		if v := tables[table].Verify; v != nil && v.Passes >= passes {
			return tables
		}
		if bg.hasExited() || time.Now().After(deadline) {
			t.Fatalf("%s was not verified %d times: %+v\n%s", table, passes, tables[table], bg.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPostgresSyncVerifiesInTheBackground runs ferry sync --verify under a
// steady write load: no table differs; a row changed at the destination
// behind the flow's back is a difference by the next pass, on the
// dashboard and in the metrics; once the source changes the row again and
// the flow applies it, the difference is gone.
func TestPostgresSyncVerifiesInTheBackground(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "vbsrc"), srv.CreateDatabase(t, "vbdst")
	pgShop(t, srv, src, 3000)
	srv.Exec(t, src, `CREATE TABLE settings (id int PRIMARY KEY, v text); INSERT INTO settings SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	w := startPGWriter(t, srv.URL(src), 3001)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "vb", "--state-dir", t.TempDir(), "--parallel", "2",
		"--verify", "50ms", "--ui", "127.0.0.1:0", "--log-format", "json", "--progress", "none")
	url := dashboardURL(t, bg)
	for _, tb := range []string{"public.lines", "public.orders", "public.settings"} {
		tables := waitPasses(t, bg, url, tb, 2)
		if v := tables[tb].Verify; v.Different != 0 || v.Error != "" || v.RowsChecked == 0 {
			t.Fatalf("%s verified under load: %+v", tb, *v)
		}
	}
	w.halt(t)

	tables := verifiedTables(t, url)
	srv.Exec(t, dst, `UPDATE settings SET v = 'tampered' WHERE id = 7`)
	at := tables["public.settings"].Verify.Passes
	v := waitPasses(t, bg, url, "public.settings", at+2)["public.settings"].Verify
	if v.Different != 1 || len(v.Diffs) != 1 || v.Diffs[0].Key != "id=7" {
		t.Fatalf("a row changed at the destination, a pass later: %+v", *v)
	}
	if _, metrics := get(t, url+"metrics", 4<<20); !strings.Contains(metrics, `ferry_verify_keys{flow="vb",state="different",table="public.settings"} 1`) {
		t.Errorf("metrics lack the difference:\n%s", metrics)
	}

	srv.Exec(t, src, `UPDATE settings SET v = 'fixed' WHERE id = 7`)
	at = v.Passes
	v = waitPasses(t, bg, url, "public.settings", at+2)["public.settings"].Verify
	if v.Different != 0 || v.Pending != 0 {
		t.Fatalf("the flow repaired the row: %+v", *v)
	}
}

// TestMySQLVerifyOnline: ferry verify --online between MariaDB servers
// while ferry sync streams a steady write load reports nothing; a row
// changed at the destination behind the flow's back is a difference.
func TestMySQLVerifyOnline(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	src, dst := mysqlDatabase(t, s, "vo_src"), mysqlDatabase(t, s, "vo_dst")
	createShop(t, s, src, 3000)
	w := startWriter(t, s, src, 3000)
	bg := startFerry(t, "sync", s.URL(src), s.URL(dst), "--name", "vomy", "--state-dir", t.TempDir(), "--parallel", "2",
		"--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	for w.ops.Load() < 200 {
		time.Sleep(10 * time.Millisecond) // waits for writes, asserts nothing on time
	}
	args := []string{"verify", "--online", "--name", "vomy", s.URL(src), s.URL(dst), "--json", "--log-format", "json"}
	r := ferry(t, args...)
	if v := parseVerified(t, r); r.code != 0 || !v.Equal {
		t.Fatalf("online verify under load: %s", r)
	}
	w.halt()
	s.Exec(t, "UPDATE `"+dst+"`.items SET qty = 99 WHERE order_id = 5 AND line = 1")
	r = ferry(t, args...)
	v := parseVerified(t, r)
	if r.code != 1 || v.Equal {
		t.Fatalf("a row changed at the destination: %s", r)
	}
	for _, tb := range v.Tables {
		if strings.HasSuffix(tb.Table, ".items") != (tb.DifferentKeys == 1) {
			t.Fatalf("%s: %d different keys\n%s", tb.Table, tb.DifferentKeys, r)
		}
	}
}
