package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// pgRows is every row of a query, each row's values printed and joined by
// "|", one row a line: two sides compare as text.
func pgRows(t *testing.T, srv *pgtest.Server, db, query string) []string {
	t.Helper()
	conn := srv.Connect(t, db)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// transformUsers makes the source of the transform tests: users, whose
// text columns make a filter need REPLICA IDENTITY FULL (it has it), and
// notes (it has not).
func transformUsers(t *testing.T, srv *pgtest.Server, db string) {
	t.Helper()
	srv.Exec(t, db, `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, phone text, name text, active bool NOT NULL, score int);
		ALTER TABLE users REPLICA IDENTITY FULL;
		INSERT INTO users SELECT g, 'user' || g || '@example.com', '+1-555-' || lpad(g::text, 4, '0'), 'Name ' || g, g % 3 <> 0,
			CASE WHEN g % 10 = 0 THEN NULL ELSE g END FROM generate_series(1, 3000) g;
		ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
		CREATE VIEW active_names AS SELECT id, name FROM users WHERE active;
		CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 100) g`)
}

// transformChanges: rows leave the filter and join it, inserts on both
// sides of it, a computed value that changes, a delete, a new email.
const transformChanges = `UPDATE users SET active = false WHERE id = 1;
	UPDATE users SET active = true WHERE id = 3;
	INSERT INTO users VALUES (3001, 'new@example.com', '+1-555-9999', 'New', true, 3001), (3002, 'off@example.com', NULL, 'Off', false, 1);
	UPDATE users SET score = 2600 WHERE id = 4;
	DELETE FROM users WHERE id = 5;
	UPDATE users SET email = 'seven@example.org' WHERE id = 7`

// awaitTransformed waits until the destination's users are the source's,
// transformed.
func awaitTransformed(t *testing.T, srv *pgtest.Server, src, dst, when string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		a, b := pgRows(t, srv, src, transformedAtSource), pgRows(t, srv, dst, transformedAtDestination)
		if strings.Join(a, "\n") == strings.Join(b, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: source (transformed) %d rows, destination %d rows", when, len(a), len(b))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// transformArgs are the transforms the transform tests run with.
var transformArgs = []string{
	"--exclude", "users.name",
	"--mask", "users.email=hash", "--mask-salt", "pii",
	"--mask", "users.phone=last4",
	"--rename-column", "users.score=points",
	"--filter", "users: active == true",
	"--compute", "users.vip = score != null && score > 2500",
}

// What the destination should hold of users, computed from the source in
// SQL: the active rows, the phone masked but its last four characters,
// score as points, vip computed (the email is hashed: compared apart).
const (
	transformedAtSource = `SELECT id, repeat('*', length(phone) - 4) || right(phone, 4), active, score, coalesce(score > 2500, false)
		FROM users WHERE active ORDER BY id`
	transformedAtDestination = `SELECT id, phone, active, points, vip FROM users ORDER BY id`
)

// TestPostgresTransforms: a column left out, two masked (a salted hash,
// the last four characters), one renamed, one computed and a row filter,
// on the copy and on the change stream alike, with rows moving into and
// out of the filter; ferry verify compares the transformed source with
// the destination; a wrong expression, a filter the change stream cannot
// evaluate, and a resumed flow with other transforms are refused up front
// with exit 2.
func TestPostgresTransforms(t *testing.T) {
	t.Setenv("FERRY_SECRET_PII", "pepper")
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "xfsrc"), srv.CreateDatabase(t, "xfdst")
	transformUsers(t, srv, src)
	state := t.TempDir()
	base := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "xf", "--state-dir", state, "--log-format", "json", "--progress", "none", "--parallel", "2", "--partition-rows", "1000"}

	// Refused before anything is written: an expression of the wrong type,
	// and a filter on a table whose updates may leave values out.
	r := ferry(t, append(append([]string{}, base...), "--filter", "users: active == 1")...)
	if r.code != 2 || !strings.Contains(r.stderr, "users") || !strings.Contains(r.stderr, "active == 1") {
		t.Fatalf("a filter comparing a boolean with a number: want exit 2 naming the table and the expression: %s", r)
	}
	r = ferry(t, append(append([]string{}, base...), "--filter", "notes: id > 5")...)
	if r.code != 2 || !strings.Contains(r.stderr, "REPLICA IDENTITY FULL") {
		t.Fatalf("a filter on a table without a full replica identity: want exit 2 with the fix: %s", r)
	}
	if n := pgRows(t, srv, dst, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); n[0] != "0" {
		t.Fatalf("a refused flow created %s tables at the destination", n[0])
	}

	plan := mustFerry(t, append([]string{"plan", srv.URL(src), srv.URL(dst)}, transformArgs...)...).stdout
	for _, want := range []string{"transforms (on the copy and the change stream alike):", "public.users: ", "active == true", "vip"} {
		if !strings.Contains(plan, want) {
			t.Fatalf("ferry plan lacks %q:\n%s", want, plan)
		}
	}

	bg := startFerry(t, append(append([]string{}, base...), transformArgs...)...)
	if !bg.waitFor(t, "change data capture starting", 90*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	cols := pgRows(t, srv, dst, `SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position`)
	if got := strings.Join(cols, ","); got != "id:integer,email:text,phone:text,active:boolean,points:integer,vip:boolean" {
		t.Fatalf("destination columns after the copy: %s", got)
	}
	if a, b := pgRows(t, srv, src, transformedAtSource), pgRows(t, srv, dst, transformedAtDestination); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("after the copy: source (transformed) %d rows, destination %d rows", len(a), len(b))
	}
	hashOf7 := pgRows(t, srv, dst, `SELECT email FROM users WHERE id = 7`)[0]
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(hashOf7) || strings.Contains(hashOf7, "example") {
		t.Fatalf("a hashed email reads %q", hashOf7)
	}

	srv.Exec(t, src, transformChanges)
	awaitTransformed(t, srv, src, dst, "after the changes")
	if h := pgRows(t, srv, dst, `SELECT email FROM users WHERE id = 7`)[0]; h == hashOf7 || len(h) != 32 {
		t.Fatalf("id 7's new email hashes to %q (was %q)", h, hashOf7)
	}
	if n := pgRows(t, srv, dst, `SELECT count(DISTINCT email) = count(*) FROM users`); n[0] != "true" {
		t.Fatal("two emails hash alike")
	}

	// verify compares the source, transformed, with the destination.
	verifyArgs := append([]string{srv.URL(src), srv.URL(dst)}, transformArgs...)
	v, r := verifyJSON(t, 0, verifyArgs...)
	if !v.Equal {
		t.Fatalf("verify of the transformed flow: %s", r)
	}
	srv.Exec(t, dst, `UPDATE users SET points = 0 WHERE id = 2`)
	v, r = verifyJSON(t, 1, verifyArgs...)
	found := false
	for _, tb := range v.Tables {
		for _, d := range tb.Diffs {
			found = found || d.Key == "id=2"
		}
	}
	if !found {
		t.Fatalf("verify did not find the row changed at the destination: %s", r)
	}

	// A resumed flow with other transforms: refused.
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("ferry exited %d on SIGINT:\n%s", code, bg.stderr.String())
	}
	r = ferry(t, append(append([]string{}, base...), "--until", "caught-up")...)
	if r.code != 2 || !strings.Contains(r.stderr, "other transforms") {
		t.Fatalf("resumed without its transforms: want exit 2: %s", r)
	}

	// No way back: it would write masked or partial rows into the source.
	r = ferry(t, append([]string{"cutover", srv.URL(src), srv.URL(dst), "--name", "xf", "--state-dir", state, "--reverse"}, transformArgs...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "does not support a flow with transforms") {
		t.Fatalf("cutover --reverse of a transformed flow: want exit 2: %s", r)
	}

	// The cutover builds no constraint and creates no view of the
	// transformed table (their columns differ there), and says so.
	r = ferry(t, append([]string{"cutover", srv.URL(src), srv.URL(dst), "--name", "xf", "--state-dir", state}, transformArgs...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "users_email_key is on a table the flow transforms") || !strings.Contains(r.stdout, "active_names") {
		t.Fatalf("cutover of a transformed flow: %s", r)
	}
	if n := pgRows(t, srv, dst, `SELECT count(*) FROM pg_views WHERE viewname = 'active_names'`); n[0] != "0" {
		t.Fatal("the cutover created a view of a transformed table")
	}
}

// TestScaleOutTransforms: the same transforms in scale-out mode: ferry run
// carries them in the flow's definition, and each of two workers applies
// them to the partitions it copies and to the changes it streams, with
// the hash's salt from its own environment.
func TestScaleOutTransforms(t *testing.T) {
	t.Setenv("FERRY_SECRET_PII", "pepper")
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "soxfsrc"), srv.CreateDatabase(t, "soxfdst")
	transformUsers(t, srv, src)
	conns := []string{"src=" + srv.URL(src) + "&heartbeat=1s", "dst=" + srv.URL(dst)}
	ts.worker(t, conns...)
	ts.worker(t, conns...)
	const name = "soxf"
	run := startFerry(t, append([]string{"run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", name,
		"--partition-rows", "500", "--log-format", "json", "--progress", "none"}, transformArgs...)...)
	ts.streamOne(t, name, run, func() { srv.Exec(t, src, transformChanges) })
	awaitTransformed(t, srv, src, dst, "scale-out, after the changes")
	if n := pgRows(t, srv, dst, `SELECT count(*) FROM users WHERE email !~ '^[0-9a-f]{32}$'`); n[0] != "0" {
		t.Fatalf("%s rows at the destination with an email not hashed", n[0])
	}
}

// TestMySQLToPostgresTransforms: the transforms from MariaDB, whose binlog
// carries whole rows (a filter needs nothing more), into PostgreSQL, on
// the copy and the change stream, rows moving into and out of the filter.
func TestMySQLToPostgresTransforms(t *testing.T) {
	requireMariaDB(t)
	t.Setenv("FERRY_SECRET_PII", "pepper")
	my := mysqltest.Shared(t)
	db := mysqlDatabase(t, my, "xfmy")
	pg := pgtest.Shared(t)
	dst := pg.CreateDatabase(t, "xfmydst")
	my.Exec(t, "CREATE TABLE `"+db+"`.users (id int PRIMARY KEY, email varchar(100) NOT NULL, phone varchar(20), name text, active bool NOT NULL, score int)",
		"INSERT INTO `"+db+"`.users SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT('+1-555-', LPAD(seq, 4, '0')), CONCAT('Name ', seq), "+
			"seq % 3 <> 0, IF(seq % 10 = 0, NULL, seq) FROM `"+db+"`.seq_1_to_3000")
	bg := startFerry(t, append([]string{"sync", my.URL(db), pg.URL(dst), "--name", "xfmy", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none"},
		transformArgs...)...)
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	my.Exec(t, "UPDATE `"+db+"`.users SET active = false WHERE id = 1",
		"UPDATE `"+db+"`.users SET active = true WHERE id = 3",
		"INSERT INTO `"+db+"`.users VALUES (3001, 'new@example.com', '+1-555-9999', 'New', true, 3001), (3002, 'off@example.com', NULL, 'Off', false, 1)",
		"UPDATE `"+db+"`.users SET score = 2600 WHERE id = 4",
		"DELETE FROM `"+db+"`.users WHERE id = 5")
	// What the destination should hold: the source's active rows (2000 of
	// the first 3000, id 3 in, ids 1 and 5 out, 3001 in, 3002 not).
	want := 2000 - 1 + 1 - 1 + 1
	q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE id IN (1, 5, 3002)), count(*) FILTER (WHERE id IN (3, 3001)),
		count(*) FILTER (WHERE id = 4 AND vip), count(*) FILTER (WHERE phone !~ '^\*+[0-9]{4}$'), count(*) FILTER (WHERE email !~ '^[0-9a-f]{32}$')
		FROM %q.users`, db)
	deadline := time.Now().Add(time.Minute)
	for {
		got := pgRows(t, pg, dst, q)[0]
		if got == fmt.Sprintf("%d|0|2|1|0|0", want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("destination users: count|left out|moved in|vip|phones unmasked|emails unhashed = %s, want %d|0|2|1|0|0\n%s", got, want, tail(bg.stderr.String(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cols := pgRows(t, pg, dst, fmt.Sprintf(`SELECT column_name FROM information_schema.columns WHERE table_schema = '%s' AND table_name = 'users' ORDER BY ordinal_position`, db))
	if got := strings.Join(cols, ","); got != "id,email,phone,active,points,vip" {
		t.Fatalf("destination columns: %s", got)
	}
}
