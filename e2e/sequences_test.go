package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// seqSchema is an application's tables with a serial, an identity and a
// sequence behind a default. The destination is created with it first:
// ferry does not create sequences yet.
const seqSchema = `
	CREATE TABLE items (id bigserial PRIMARY KEY, v text);
	CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY (INCREMENT BY 3) PRIMARY KEY, v text);
	CREATE SEQUENCE tickets START WITH 1000;
	CREATE TABLE notes (id bigint PRIMARY KEY DEFAULT nextval('tickets'), v text);`

// seqNames are the sequences seqSchema makes.
var seqNames = []string{"items_id_seq", "events_id_seq", "tickets"}

// seqValues reads where each of seqNames stands in db: the last value
// handed out (or, for one never called, the start value).
func seqValues(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, s := range seqNames {
		var v int64
		if err := conn.QueryRow(context.Background(), "SELECT last_value FROM "+s).Scan(&v); err != nil {
			t.Fatalf("read %s: %v", s, err)
		}
		out[s] = v
	}
	return out
}

// startSeqLoad inserts rows relying on the sequences until stop is closed.
func startSeqLoad(t *testing.T, srv *pgtest.Server, db string) (stop func() int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.AdminURL(db))
	if err != nil {
		t.Fatal(err)
	}
	halt, done := make(chan struct{}), make(chan error, 1)
	var n atomic.Int64
	go func() {
		defer conn.Close(ctx)
		for {
			select {
			case <-halt:
				done <- nil
				return
			default:
			}
			if _, err := conn.Exec(ctx, `INSERT INTO items (v) VALUES ('load'); INSERT INTO events (v) VALUES ('load');
				INSERT INTO notes (v) VALUES ('load')`); err != nil {
				done <- err
				return
			}
			n.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var stopped bool
	stop = func() int64 {
		if !stopped {
			stopped = true
			close(halt)
			if err := <-done; err != nil {
				t.Errorf("load: %v", err)
			}
		}
		return n.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// --sync-sequences during CDC under an insert load: the destination's
// sequences keep up with the source's, the dashboard shows the last copy,
// a sequence the destination lacks is logged once, and the application's
// inserts at the destination get fresh numbers.
func TestPostgresSyncSequencesUnderLoad(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "seqsrc"), srv.CreateDatabase(t, "seqdst")
	srv.Exec(t, src, seqSchema+`
		CREATE SEQUENCE only_at_source;
		INSERT INTO items (v) SELECT 'old' FROM generate_series(1, 500);
		INSERT INTO events (v) SELECT 'old' FROM generate_series(1, 500);
		INSERT INTO notes (v) SELECT 'old' FROM generate_series(1, 500);`)
	srv.Exec(t, dst, seqSchema)
	ctx := context.Background()
	sconn, dconn := srv.Connect(t, src), srv.Connect(t, dst)

	stopLoad := startSeqLoad(t, srv, src)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--state-dir", t.TempDir(), "--sync-sequences", "1s",
		"--ui", "127.0.0.1:0", "--log-format", "json", "--progress", "none")
	ui := dashboardURL(t, bg)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	time.Sleep(2 * time.Second)
	earlier := seqValues(t, sconn)
	// One period and the time a copy takes later, the destination is at
	// least where the source was.
	time.Sleep(2500 * time.Millisecond)
	mid := seqValues(t, dconn)
	for s, v := range earlier {
		if mid[s] < v {
			t.Errorf("%s: the destination is at %d, 2.5s after the source was at %d", s, mid[s], v)
		}
	}
	if n := stopLoad(); n < 100 {
		t.Fatalf("the load inserted only %d times", n)
	}
	final := seqValues(t, sconn)
	var got map[string]int64
	deadline := time.Now().Add(3 * time.Second) // one period and then some
	for time.Now().Before(deadline) {
		if got = seqValues(t, dconn); equalValues(got, final) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !equalValues(got, final) {
		t.Fatalf("after the load stopped and a period passed, the destination's sequences are %v, the source's %v", got, final)
	}

	_, doc := get(t, ui+"api/flow", 1<<20)
	var f struct {
		Sequences *struct {
			LastCopied time.Time `json:"last_copied"`
			Set        int       `json:"set"`
			Missing    int       `json:"missing"`
		} `json:"sequences"`
	}
	if err := json.Unmarshal([]byte(doc), &f); err != nil {
		t.Fatal(err)
	}
	if s := f.Sequences; s == nil || s.Set != 3 || s.Missing != 1 || time.Since(s.LastCopied) > 3*time.Second {
		t.Fatalf("/api/flow shows sequences %+v, want 3 set and 1 missing within the last period:\n%s", s, doc)
	}
	if n := strings.Count(bg.stderr.String(), `"msg":"sequences missing at the destination, not set; they are set once they exist"`); n != 1 || !strings.Contains(bg.stderr.String(), "public.only_at_source") {
		t.Errorf("the missing sequence was logged %d times, want once naming public.only_at_source:\n%s", n, bg.stderr.String())
	}

	// The rows are there; the application moves to the destination.
	waitSameCount(t, sconn, dconn, "items", "events", "notes")
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, bg.stderr.String())
	}
	for _, c := range []struct{ table, next string }{
		{"items", "items_id_seq"}, {"events", "events_id_seq"}, {"notes", "tickets"},
	} {
		var id int64
		if err := dconn.QueryRow(ctx, "INSERT INTO "+c.table+" (v) VALUES ('app') RETURNING id").Scan(&id); err != nil {
			t.Fatalf("the application's insert into %s at the destination: %v", c.table, err)
		}
		var maxSrc int64
		if err := sconn.QueryRow(ctx, "SELECT max(id) FROM "+c.table).Scan(&maxSrc); err != nil {
			t.Fatal(err)
		}
		if id <= maxSrc {
			t.Errorf("%s: the destination handed out id %d, the source already had up to %d", c.table, id, maxSrc)
		}
	}
}

func equalValues(a, b map[string]int64) bool {
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

// waitSameCount waits until each table has as many rows at the destination
// as at the source.
func waitSameCount(t *testing.T, src, dst *pgx.Conn, tables ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, tbl := range tables {
		for {
			var a, b int64
			if err := src.QueryRow(context.Background(), "SELECT count(*) FROM "+tbl).Scan(&a); err != nil {
				t.Fatal(err)
			}
			if err := dst.QueryRow(context.Background(), "SELECT count(*) FROM "+tbl).Scan(&b); err != nil {
				t.Fatal(err)
			}
			if a == b {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d rows at the source, %d at the destination", tbl, a, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
