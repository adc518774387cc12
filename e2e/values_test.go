package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// edgeValues creates tables of the values PostgreSQL holds and a calendar
// does not: infinite dates and timestamps, multi-dimensional arrays (inf),
// and dates before 1 AD (bc).
func edgeValues(t *testing.T, srv *pgtest.Server, db string) {
	t.Helper()
	srv.Exec(t, db, `
		CREATE TABLE inf (id int PRIMARY KEY, ts timestamp, tz timestamptz, d date, m int[], words text[]);
		INSERT INTO inf VALUES
			(1, 'infinity', '-infinity', 'infinity', '{{1,2},{NULL,4}}', '{{{"a b",NULL}},{{"}","c,d"}}}'),
			(2, '-infinity', 'infinity', '-infinity', '{1,2}', '{}'),
			(3, '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+00', '2024-01-02', NULL, NULL);
		CREATE TABLE bc (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz);
		INSERT INTO bc VALUES
			(1, '4713-01-01 BC', '4713-11-24 00:00:00 BC', '0044-03-15 12:00:00+00 BC'),
			(2, '0001-12-31 BC', '0001-01-01 00:00:00 BC', '0001-01-01 00:00:00+00'),
			(3, '2024-02-29', '294276-12-31 23:59:59.999999', NULL);`)
}

// sameRowsByID compares tables keyed by id of two databases by their rows'
// text.
func sameRowsByID(t *testing.T, srv *pgtest.Server, srcDB, dstDB string, tables ...string) {
	t.Helper()
	for _, tbl := range tables {
		a, na := pgDigest(t, srv, srcDB, tbl, "id")
		b, nb := pgDigest(t, srv, dstDB, tbl, "id")
		if a != b || na != nb {
			t.Errorf("%s differs: source %d rows (%s), destination %d rows (%s)", tbl, na, a, nb, b)
		}
	}
}

// Infinite dates and timestamps, BC dates and multi-dimensional arrays go
// to JSON Lines and CSV files, verify equal there, and come back into
// PostgreSQL unchanged (issue 14: they were written as invented dates that
// ferry's own reader refused, and 2-D arrays failed mid-copy).
func TestPostgresEdgeValuesThroughFiles(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "edgesrc")
	edgeValues(t, srv, src)
	dir := t.TempDir()
	for _, format := range []string{"jsonl", "csv"} {
		out := filepath.Join(dir, "export-"+format)
		files := "file://" + out + "?format=" + format
		mustFerry(t, "sync", srv.URL(src), files, "--state-dir", dir)
		v := ferry(t, "verify", srv.URL(src), files)
		if v.code != 0 || !strings.Contains(v.stdout, "all 2 table(s) equal") {
			t.Fatalf("verify postgres vs %s: %s", format, v)
		}
		back := srv.CreateDatabase(t, "edgeback"+format)
		mustFerry(t, "sync", files, srv.URL(back), "--state-dir", dir)
		sameRowsByID(t, srv, src, back, "inf", "bc")
		if v := ferry(t, "verify", srv.URL(src), srv.URL(back)); v.code != 0 {
			t.Errorf("verify postgres vs postgres through %s: %s", format, v)
		}
	}
	inf := strings.Join(readLines(t, filepath.Join(dir, "export-jsonl", "public.inf.jsonl")), "\n")
	for _, want := range []string{`"ts":"infinity","tz":"-infinity","d":"infinity","m":[[1,2],[null,4]]`, `"words":[[["a b",null]],[["}","c,d"]]]`} {
		if !strings.Contains(inf, want) {
			t.Errorf("public.inf.jsonl lacks %s:\n%s", want, inf)
		}
	}
	bc := strings.Join(readLines(t, filepath.Join(dir, "export-csv", "public.bc.csv")), "\n")
	if !strings.Contains(bc, "1,-4712-01-01,-4712-11-24T00:00:00,-0043-03-15T12:00:00Z") {
		t.Errorf("public.bc.csv:\n%s", bc)
	}
}

// Into SQLite infinity is stored as text and verifies equal; a BC date,
// which SQLite's date format cannot hold, fails at its row naming the
// table, the column and the key, and says how to exclude the table.
func TestPostgresEdgeValuesIntoSQLite(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "edgelite")
	edgeValues(t, srv, src)
	dir := t.TempDir()
	db := filepath.Join(dir, "edge.db")
	mustFerry(t, "sync", srv.URL(src), "sqlite://"+db, "--state-dir", dir, "--mode", "snapshot", "--tables", "inf")
	if v := ferry(t, "verify", srv.URL(src), "sqlite://"+db, "--tables", "inf"); v.code != 0 || !strings.Contains(v.stdout, "all 1 table(s) equal") {
		t.Fatalf("verify postgres vs sqlite: %s", v)
	}
	var ts, tz, m string
	if err := openSQLite(t, db).QueryRow(`SELECT ts, tz, m FROM inf WHERE id = 1`).Scan(&ts, &tz, &m); err != nil || ts != "infinity" || tz != "-infinity" || m != "[[1,2],[null,4]]" {
		t.Fatalf("SQLite row 1: ts %q tz %q m %q (%v)", ts, tz, m, err)
	}

	r := ferry(t, "sync", srv.URL(src), "sqlite://"+filepath.Join(dir, "bc.db"), "--state-dir", dir, "--mode", "snapshot", "--tables", "bc")
	t.Log(r.stderr)
	if r.code != 1 {
		t.Fatalf("BC dates into SQLite: want exit 1, got %s", r)
	}
	for _, want := range []string{"bc", "column d", "key (id=1)", "year -4712 is outside 0000-9999", "--tables '!public.bc'"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("BC dates into SQLite: the error lacks %q:\n%s", want, r.stderr)
		}
	}
}

// A two-dimensional json[] has no unambiguous form in a file: the copy
// fails at its row, naming the key and how to exclude the table.
func TestPostgresMultiDimJSONArrayIntoFiles(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "edgejson")
	srv.Exec(t, src, `CREATE TABLE docs (id int PRIMARY KEY, j jsonb[]);
		INSERT INTO docs VALUES (1, ARRAY['[1,2]'::jsonb, '{"a":1}']), (2, '{{"1","2"},{"3","4"}}')`)
	dir := t.TempDir()
	r := ferry(t, "sync", srv.URL(src), "file://"+filepath.Join(dir, "out")+"?format=jsonl", "--state-dir", dir)
	t.Log(r.stderr)
	if r.code != 1 {
		t.Fatalf("2-D jsonb[] into files: want exit 1, got %s", r)
	}
	for _, want := range []string{"docs", "key (id=2)", `column "j"`, "multi-dimensional array of json", "--tables '!public.docs'"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error lacks %q:\n%s", want, r.stderr)
		}
	}
}

// CDC carries infinity and multi-dimensional arrays (pgoutput's text form)
// to SQLite and PostgreSQL destinations, inserted and updated.
func TestPostgresEdgeValuesThroughCDC(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "edgecdc")
	edgeValues(t, srv, src)
	srv.Exec(t, src, `DROP TABLE bc`)
	dstPG := srv.CreateDatabase(t, "edgecdcdst")
	dir := t.TempDir()
	dsts := []string{"sqlite://" + filepath.Join(dir, "cdc.db"), srv.URL(dstPG)}
	for _, dst := range dsts {
		mustFerry(t, "sync", srv.URL(src), dst, "--state-dir", dir, "--until", "caught-up")
	}
	srv.Exec(t, src, `
		INSERT INTO inf VALUES (4, 'infinity', 'infinity', '-infinity', '{{5,6,7},{8,NULL,9}}', '{{"x"},{NULL}}');
		UPDATE inf SET ts = '-infinity', tz = 'infinity', d = '2020-01-01', m = '{{{1}},{{2}}}' WHERE id = 3;
		UPDATE inf SET ts = '2020-01-01 00:00:00', m = '{3}' WHERE id = 1;`)
	for _, dst := range dsts {
		mustFerry(t, "sync", srv.URL(src), dst, "--state-dir", dir, "--until", "caught-up")
		if v := ferry(t, "verify", srv.URL(src), dst); v.code != 0 || !strings.Contains(v.stdout, "all 1 table(s) equal") {
			t.Errorf("verify postgres vs %s after CDC: %s", dst, v)
		}
	}
	sameRowsByID(t, srv, src, dstPG, "inf")
	var ts, m string
	if err := openSQLite(t, filepath.Join(dir, "cdc.db")).QueryRow(`SELECT ts, m FROM inf WHERE id = 3`).Scan(&ts, &m); err != nil || ts != "-infinity" || m != "[[[1]],[[2]]]" {
		t.Errorf("SQLite row 3 after CDC: ts %q m %q (%v)", ts, m, err)
	}
}

// An array whose dimensions do not start at 1 has no canonical form: read
// for another destination than PostgreSQL, it fails at its row, naming the
// key and how to exclude the table.
func TestPostgresArrayLowerBoundIntoFiles(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "edgebounds")
	srv.Exec(t, src, `CREATE TABLE bounds (id int PRIMARY KEY, a int[]);
		INSERT INTO bounds VALUES (1, '{1,2}'), (7, '[0:1]={1,2}')`)
	dir := t.TempDir()
	r := ferry(t, "sync", srv.URL(src), "file://"+filepath.Join(dir, "out")+"?format=jsonl", "--state-dir", dir)
	if r.code != 1 {
		t.Fatalf("an array starting at 0 into files: want exit 1, got %s", r)
	}
	for _, want := range []string{"table public.bounds, column a, key (id=7)", "explicit bounds", "--tables '!public.bounds'"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error lacks %q:\n%s", want, r.stderr)
		}
	}
}
