package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPostgresSourceUnderAnotherAddress: a flow started on 127.0.0.1
// resumes with its source named localhost (the same server: the same
// system identifier) and a log line saying so, streaming on from its slot;
// the same database name on another PostgreSQL cluster is refused, exit 2.
func TestPostgresSourceUnderAnotherAddress(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "movedsrc"), srv.CreateDatabase(t, "moveddst")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'a' FROM generate_series(1, 100) g`)
	dir := t.TempDir()
	run := func(srcURL string) result {
		return ferry(t, "sync", srcURL, srv.URL(dst), "--name", "moved", "--state-dir", dir, "--until", "caught-up", "--progress", "none", "--log-format", "json")
	}
	if r := run(srv.URL(src)); r.code != 0 {
		t.Fatalf("first run: %s", r)
	}
	srv.Exec(t, src, `INSERT INTO items SELECT g, 'b' FROM generate_series(101, 150) g`)

	local := strings.Replace(srv.URL(src), "127.0.0.1", "localhost", 1)
	r := run(local)
	if r.code != 0 {
		t.Fatalf("the same server under localhost: %s", r)
	}
	if l := r.logLine("source moved: the flow resumes on the same server under another address"); l == nil {
		t.Fatalf("no log line says the source moved:\n%s", r.stderr)
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 150 {
		t.Fatalf("the destination has %d rows (%v), want 150: the changes made before the move were not streamed", n, err)
	}

	other := pgtest.Start(t)
	other.Exec(t, "postgres", `CREATE DATABASE `+src)
	r = run(strings.Replace(other.URL(src), "127.0.0.1", "localhost", 1))
	if r.code != 2 || !strings.Contains(r.stderr, "is another server") {
		t.Fatalf("another cluster: want exit 2 saying it is another server, got %s", r)
	}
}
