package e2e

// The bad-input sweep of the fault-injection suite (issue 8): malformed and
// hostile inputs, each either refused with a clear error (exit 2 before
// anything is written, or exit 1 naming the table, column and key when a
// value is refused mid-flow, with nothing of it written) or copied exactly.
// badinput_test.go holds the first set of usage errors; these add hostile
// URLs, flow files, filters and names, and hostile data: identifiers with
// quotes, spaces, unicode and SQL keywords, very wide rows, 100 MB values,
// NUL bytes in MariaDB text, and latin1 bytes that are not UTF-8.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestHostileArguments: hostile URLs, names, filters and flow files are
// refused with exit 2 and a message that says what is wrong; no password is
// printed, nothing is created outside the state directory, no destination
// is written.
func TestHostileArguments(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	dst := "sqlite://" + filepath.Join(dir, "never.db")
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.Mkdir(filepath.Join(dir, "adir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	bomb := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
source: fake://
destination: ` + dst + `
tables: *h
`
	garbage := make([]byte, 2048)
	for i := range garbage {
		garbage[i] = byte(i*7 + i/3)
	}
	long := "fake://?tables=1&colour=" + strings.Repeat("A", 100_000)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"URL with a bad escape after a password", []string{"sync", "postgres://app:hunter2%zz@db:5432/shop", dst}, []string{"malformed URL", `a '%' not followed by two hex digits`, "'%' as %25"}},
		{"URL with a newline", []string{"sync", "postgres://app:hunter2@db:5432/shop\n--evil", dst}, []string{"malformed URL", "control character"}},
		{"empty source URL", []string{"sync", "", dst}, []string{"no source URL"}},
		{"URL of 100 KB", []string{"sync", long, dst}, []string{`unknown fake setting "colour"`}},
		{"flow name climbing out of the state directory", []string{"sync", "fake://?tables=1", dst, "--name", "../../escape", "--mode", "snapshot"}, []string{`invalid flow name "../../escape"`}},
		{"flow name with a slash", []string{"sync", "fake://?tables=1", dst, "--name", "a/b", "--mode", "snapshot"}, []string{"invalid flow name"}},
		{"flow name with quotes and spaces", []string{"sync", "fake://?tables=1", dst, "--name", `x'; DROP TABLE "t`, "--mode", "snapshot"}, []string{"invalid flow name"}},
		{"filter with SQL in it", []string{"sync", "fake://?tables=1", dst, "--tables", "x'; DROP TABLE t; --", "--mode", "snapshot"}, []string{"matches no table", "fake.t1"}},
		{"filter with unicode", []string{"sync", "fake://?tables=1", dst, "--tables", "ünï*😀", "--mode", "snapshot"}, []string{`--tables "ünï*😀" matches no table`}},
		{"rename without a target", []string{"sync", "fake://?tables=1", dst, "--rename", "fake.t1", "--mode", "snapshot"}, []string{"expected FROM=TO"}},
		{"rename to nothing", []string{"sync", "fake://?tables=1", dst, "--rename", "fake.t1=", "--mode", "snapshot"}, []string{"empty table name"}},
		{"negative parallelism", []string{"sync", "fake://?tables=1", dst, "--parallel", "-1"}, []string{"--parallel must be positive"}},
		{"negative batch size", []string{"sync", "fake://?tables=1", dst, "--batch-rows", "-5"}, []string{"--batch-rows must be positive"}},
		// A zero would silently mean the default: refused like a negative.
		{"zero parallelism", []string{"sync", "fake://?tables=1", dst, "--parallel", "0"}, []string{"--parallel must be positive, not 0", "leave it out"}},
		{"zero batch size", []string{"sync", "fake://?tables=1", dst, "--batch-rows", "0"}, []string{"--batch-rows must be positive, not 0"}},
		{"zero writers", []string{"sync", "fake://?tables=1", dst, "--writers", "0"}, []string{"--writers must be positive, not 0"}},
		{"zero apply batch", []string{"sync", "fake://?tables=1", dst, "--apply-batch", "0"}, []string{"--apply-batch must be positive, not 0"}},
		{"unknown apply mode", []string{"sync", "fake://?tables=1", dst, "--apply-mode", "serial"}, []string{`unknown --apply-mode "serial"`, "transactional"}},
		{"transactional apply with several writers", []string{"sync", "fake://?tables=1", dst, "--apply-mode", "transactional", "--writers", "4"}, []string{"applies with one writer", "leave --writers out"}},
		{"max rate in an unknown unit", []string{"sync", "fake://?tables=1", dst, "--max-rate", "10MBit/s"}, []string{`invalid --max-rate "10MBit/s"`, "10MB/s"}},
		{"zero max rate", []string{"sync", "fake://?tables=1", dst, "--max-rate", "0"}, []string{`invalid --max-rate "0"`}},
		{"zero apply linger", []string{"sync", "fake://?tables=1", dst, "--apply-linger", "0s"}, []string{"--apply-linger must be positive, not 0s"}},
		{"negative partition size", []string{"sync", "fake://?tables=1", dst, "--partition-rows", "-5"}, []string{"--partition-rows must be positive, not -5"}},
		{"zero partition size", []string{"sync", "fake://?tables=1", dst, "--partition-rows", "0"}, []string{"--partition-rows must be positive, not 0"}},
		{"zero history limit", []string{"run", "--source", "a", "--destination", "b", "--history-limit", "0"}, []string{"--history-limit must be positive, not 0"}},
		{"flow file: negative parallelism", []string{"sync", "-f", file("negative.yaml", "source: fake://\ndestination: "+dst+"\nparallel: -2\n")}, []string{"parallel must be positive, not -2"}},
		{"flow file: syntax error", []string{"sync", "-f", file("syntax.yaml", "source: fake://\ndestination: [unclosed\n")}, []string{"syntax.yaml", "did not find expected"}},
		{"flow file: misspelt key", []string{"sync", "-f", file("typo.yaml", "source: fake://\ndestination: "+dst+"\nparalel: 3\n")}, []string{"typo.yaml", "field paralel not found"}},
		{"flow file: wrong type", []string{"sync", "-f", file("type.yaml", "source: fake://\ndestination: "+dst+"\nparallel: lots\n")}, []string{"type.yaml", "cannot unmarshal"}},
		{"flow file: bad duration", []string{"sync", "-f", file("duration.yaml", "source: fake://\ndestination: "+dst+"\nretry_timeout: forever\n")}, []string{"duration.yaml", "time.Duration"}},
		{"flow file: alias bomb", []string{"sync", "-f", file("bomb.yaml", bomb)}, []string{"bomb.yaml"}},
		{"flow file: binary garbage", []string{"sync", "-f", file("garbage.yaml", string(garbage))}, []string{"garbage.yaml"}},
		{"flow file: empty", []string{"sync", "-f", file("empty.yaml", "")}, []string{"empty.yaml is empty", "source and a destination"}},
		{"flow file: a directory", []string{"sync", "-f", filepath.Join(dir, "adir.yaml")}, []string{"adir.yaml", "is a directory"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := ferry(t, append(c.args, "--state-dir", state)...)
			if ctx.Err() != nil {
				t.Fatal("ferry took more than a minute to refuse it")
			}
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
			if len(r.stderr) > 8<<10 {
				t.Errorf("the message is %d bytes long: an input should not be echoed whole", len(r.stderr))
			}
			if _, err := os.Stat(filepath.Join(dir, "never.db")); err == nil {
				t.Fatal("the destination was created")
			}
		})
	}
	// Nothing escaped the state directory, and no flow state was left.
	for _, p := range []string{filepath.Join(dir, "escape.db"), filepath.Join(filepath.Dir(dir), "escape.db"), filepath.Join(state, "..", "..", "escape.db")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a state file was created outside the state directory: %s", p)
		}
	}
	if entries, _ := os.ReadDir(state); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state left behind by refused runs: %v", names)
	}
}

// TestPasswordsNeverPrinted: connection strings whose password a parser
// stumbles on (a raw '/', '#' or '?' in a URL's password, a libpq
// keyword/value string, a Go MySQL DSN) are refused or fail with exit 2 and
// a message saying what to do, and the password appears nowhere in what
// ferry prints. Before, the first was echoed whole ("malformed URL
// "postgres://postgres:Sup3r/Secret@..."), the others leaked its start
// (invalid port ":Sup3r" after host) or all of it ("has no scheme").
func TestPasswordsNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	dst := "sqlite://" + filepath.Join(dir, "never.db")
	state := filepath.Join(dir, "state")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"raw '/' in a URL's password", []string{"plan", "postgres://postgres:Sup3r/Secret@127.0.0.1:1/t7"},
			[]string{`malformed URL "postgres://postgres:xxxxx@127.0.0.1:1/t7"`, "password holds '/'", "'/' as %2F", "password='P'"}},
		{"raw '#' in a URL's password", []string{"plan", "postgres://postgres:Sup3r#Secret@127.0.0.1:1/t7"},
			[]string{"password holds '#'", "'#' as %23"}},
		{"raw '?' in a URL's password", []string{"plan", "postgres://postgres:Sup3r?Secret@127.0.0.1:1/t7"},
			[]string{"password holds '?'", "'?' as %3F"}},
		{"raw '/' after digits in a URL's password", []string{"sync", "postgres://postgres:123/Sup3rSecret@127.0.0.1:1/t7", dst, "--state-dir", state},
			[]string{"password holds '/'"}},
		{"raw '/' in a destination's password", []string{"sync", "fake://?tables=1", "mysql://root:Sup3r/Secret@127.0.0.1:1/t7", "--state-dir", state},
			[]string{"destination:", "password holds '/'"}},
		// Accepted now: it reaches the (absent) server, as a URL would.
		{"keyword/value string", []string{"plan", "host=127.0.0.1 port=1 user=postgres password=Sup3rSecret dbname=t7"},
			[]string{"host=127.0.0.1 port=1 user=postgres password=xxxxx dbname=t7", "cannot reach PostgreSQL at 127.0.0.1:1"}},
		{"keyword/value string with an unquoted space", []string{"plan", "host=127.0.0.1 port=1 user=postgres password=Sup3r Secret dbname=t7"},
			[]string{"PostgreSQL connection string", "the value of password is followed by text that is not keyword=value", "password='a b"}},
		{"keyword/value string with an unclosed quote", []string{"sync", "fake://?tables=1", "host=127.0.0.1 port=1 password='Sup3r Secret dbname=t7", "--state-dir", state},
			[]string{"a quoted value has no closing quote"}},
		{"Go MySQL DSN", []string{"plan", "root:Sup3rSecret@tcp(127.0.0.1:1)/t7"},
			[]string{"is not a URL", "mysql://user:pass@host:3306/db"}},
		{"a '#' in a password parameter", []string{"plan", "postgres://127.0.0.1:1/t7?password=Sup3r#Secret"},
			[]string{"'#' as %23"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ferry(t, c.args...)
			if r.code != 2 {
				t.Fatalf("want exit code 2, got %s", r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			for _, part := range []string{"Sup3r", "Secret"} {
				if strings.Contains(r.stdout+r.stderr, part) {
					t.Errorf("the password (%q) is printed:\n%s", part, r)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "never.db")); err == nil {
				t.Fatal("the destination was created")
			}
		})
	}
}

// syncWithChanges runs a flow to CDC, makes changes at the source while it
// streams, stops it and runs it again until caught up.
func syncWithChanges(t *testing.T, name, src, dst string, change func(), extra ...string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"sync", src, dst, "--name", name, "--state-dir", dir, "--log-format", "json", "--progress", "none"}, extra...)
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 3*time.Minute) {
		t.Fatalf("CDC never started:\n%s", tail(bg.stderr.String(), 30))
	}
	change()
	if code := bg.signal(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d:\n%s", code, tail(bg.stderr.String(), 30))
	}
	mustFerry(t, append(args, "--until", "caught-up")...)
}

// TestHostileIdentifiersPostgres: schema, table and column names with
// quotes, spaces, unicode, mixed case and SQL keywords are copied and
// followed by CDC exactly.
func TestHostileIdentifiersPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "identsrc"), srv.CreateDatabase(t, "identdst")
	tables := []string{`"My Schema ü"."select"`, `"My Schema ü"."we""ird 'q' ;--"`, `public."ünï 😀"`, `public."Mixed Case"`, `public."order"`}
	ddl := `CREATE SCHEMA "My Schema ü";`
	for _, tbl := range tables {
		ddl += fmt.Sprintf(`CREATE TABLE %s ("from" int PRIMARY KEY, "col with space" text, "quo""te'd" text, "ünï" text, "ORDER" int, "Mixed" text);
			INSERT INTO %s SELECT g, 'v ' || g, 'q''' || g || '"', 'ü' || g, g * 2, NULL FROM generate_series(1, 300) g;`, tbl, tbl)
	}
	srv.Exec(t, src, ddl)
	syncWithChanges(t, "hostile-ident-pg", srv.URL(src), srv.URL(dst), func() {
		for _, tbl := range tables {
			srv.Exec(t, src, fmt.Sprintf(`UPDATE %s SET "col with space" = 'changed; DROP TABLE x', "Mixed" = 'm' WHERE "from" %% 7 = 0;
				DELETE FROM %s WHERE "from" %% 11 = 0; INSERT INTO %s VALUES (1000, 'new', '''', '😀', 1, 'x')`, tbl, tbl, tbl))
		}
		time.Sleep(time.Second)
	})
	for _, tbl := range tables {
		n, differ, dups := pgDiff(t, srv, src, srv, dst, tbl, `"from"`)
		if n == 0 || differ != 0 || dups != 0 {
			t.Errorf("%s: %d rows compared, %d differ, %d duplicates", tbl, n, differ, dups)
		}
	}
	v := mustFerry(t, "verify", srv.URL(src), srv.URL(dst))
	if !strings.Contains(v.stdout, fmt.Sprintf("all %d table(s) equal", len(tables))) {
		t.Fatalf("verify: %s", v)
	}
}

// readText reads every row of a query as text, keyed by the first column.
func readText(t *testing.T, rows interface {
	Next() bool
	Err() error
}, scan func(dst ...any) error, ncols int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for rows.Next() {
		vals := make([]sql.NullString, ncols)
		ptrs := make([]any, ncols)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, ncols)
		for i, v := range vals {
			row[i] = v.String
			if !v.Valid {
				row[i] = nullMark
			}
		}
		out[row[0]] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readMyRows(t *testing.T, db *sql.DB, q string, ncols int) map[string][]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	return readText(t, rows, rows.Scan, ncols)
}

func readPGRows(t *testing.T, srv *pgtest.Server, db, q string, ncols int) map[string][]string {
	t.Helper()
	rows, err := srv.Connect(t, db).Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	return readText(t, rows, rows.Scan, ncols)
}

func sameRows(t *testing.T, what string, a, b map[string][]string) {
	t.Helper()
	if len(a) == 0 {
		t.Errorf("%s: no rows at the source", what)
	}
	bad := 0
	for k, ra := range a {
		if rb, ok := b[k]; !ok || strings.Join(ra, "\x01") != strings.Join(rb, "\x01") {
			if bad < 5 {
				t.Errorf("%s, key %s: source %q, destination %q", what, k, ra, rb)
			}
			bad++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: key %s only at the destination", what, k)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d rows differ", what, bad, len(a))
	}
}

// TestHostileIdentifiersMySQL: MariaDB table and column names with quotes,
// backticks, spaces, unicode and SQL keywords, into PostgreSQL.
func TestHostileIdentifiersMySQL(t *testing.T) {
	requireMariaDB(t)
	my, pg := mysqltest.Shared(t), pgtest.Shared(t)
	src, dst := mysqlDatabase(t, my, "ident"), pg.CreateDatabase(t, "ident")
	tables := []string{"select", "we'ird \"q\" ;--", "ünï", "Mixed Case", "back`tick"}
	q := func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
	db := my.Connect(t, src)
	for _, tbl := range tables {
		for _, stmt := range []string{
			fmt.Sprintf("CREATE TABLE %s (`from` int PRIMARY KEY, `col with space` text, `quo\"te'd` varchar(40), `ünï` varchar(40), `ORDER` int, `tick``s` text)", q(tbl)),
			fmt.Sprintf("INSERT INTO %s SELECT seq, CONCAT('v ', seq), CONCAT('q''', seq, '\"'), CONCAT('ü', seq), seq * 2, NULL FROM seq_1_to_300", q(tbl)),
		} {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	syncWithChanges(t, "hostile-ident-my", my.URL(src), pg.URL(dst), func() {
		for _, tbl := range tables {
			for _, stmt := range []string{
				fmt.Sprintf("UPDATE %s SET `col with space` = 'changed; DROP TABLE x', `tick``s` = 'm' WHERE `from` %% 7 = 0", q(tbl)),
				fmt.Sprintf("DELETE FROM %s WHERE `from` %% 11 = 0", q(tbl)),
				fmt.Sprintf("INSERT INTO %s VALUES (1000, 'new', '''', 'ü', 1, 'x')", q(tbl)),
			} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
		}
		time.Sleep(time.Second)
	})
	for _, tbl := range tables {
		a := readMyRows(t, db, fmt.Sprintf("SELECT CAST(`from` AS CHAR), `col with space`, `quo\"te'd`, `ünï`, CAST(`ORDER` AS CHAR), `tick``s` FROM %s", q(tbl)), 6)
		b := readPGRows(t, pg, dst, fmt.Sprintf(`SELECT "from"::text, "col with space", "quo""te'd", "ünï", "ORDER"::text, "tick`+"`"+`s" FROM %s`, pgx.Identifier{src, tbl}.Sanitize()), 6)
		sameRows(t, tbl, a, b)
	}
	v := mustFerry(t, "verify", my.URL(src), pg.URL(dst))
	if !strings.Contains(v.stdout, fmt.Sprintf("all %d table(s) equal", len(tables))) {
		t.Fatalf("verify: %s", v)
	}
}

// TestHostileWideRowsPostgres: a table of 1,000 columns (PostgreSQL allows
// 1,600) is copied and followed exactly.
func TestHostileWideRowsPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "widesrc"), srv.CreateDatabase(t, "widedst")
	var cols, vals []string
	for i := 0; i < 999; i++ {
		if i%2 == 0 {
			cols = append(cols, fmt.Sprintf("c%d int", i))
			vals = append(vals, fmt.Sprintf("g + %d", i))
		} else {
			cols = append(cols, fmt.Sprintf("c%d text", i))
			vals = append(vals, fmt.Sprintf("CASE WHEN g %% %d = 0 THEN NULL ELSE 'v%d-' || g END", i%13+2, i))
		}
	}
	srv.Exec(t, src, fmt.Sprintf(`CREATE TABLE wide (id int PRIMARY KEY, %s); INSERT INTO wide SELECT g, %s FROM generate_series(1, 500) g`,
		strings.Join(cols, ", "), strings.Join(vals, ", ")))
	syncWithChanges(t, "hostile-wide", srv.URL(src), srv.URL(dst), func() {
		srv.Exec(t, src, `UPDATE wide SET c1 = 'changed', c998 = NULL WHERE id % 5 = 0; DELETE FROM wide WHERE id % 9 = 0;
			INSERT INTO wide (id, c500) VALUES (10000, 1)`)
		time.Sleep(time.Second)
	})
	n, differ, dups := pgDiff(t, srv, src, srv, dst, "wide", "id")
	if n == 0 || differ != 0 || dups != 0 {
		t.Fatalf("wide: %d rows compared, %d differ, %d duplicates", n, differ, dups)
	}
	mustFerry(t, "verify", srv.URL(src), srv.URL(dst))
}

// hugeMiB is the size of the huge values: 100 MiB in the full suite (make
// chaos), 10 MiB in the normal test run, which must stay quick.
func hugeMiB() int { return chaosPick(10, 100) }

// TestHostileHugeValuesPostgres: 100 MB values (text and bytea) in the copy
// and in CDC.
func TestHostileHugeValuesPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "hugesrc"), srv.CreateDatabase(t, "hugedst")
	mib := hugeMiB()
	// Hex digits that do not compress, and bytes.
	srv.Exec(t, src, fmt.Sprintf(`CREATE TABLE huge (id int PRIMARY KEY, t text, b bytea);
		INSERT INTO huge SELECT 1, string_agg(md5(g::text), ''), NULL FROM generate_series(1, %d) g;
		INSERT INTO huge SELECT 2, NULL, decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, %d) g;
		INSERT INTO huge VALUES (3, 'small', '\x00ff')`, mib<<15, mib<<16))
	syncWithChanges(t, "hostile-huge", srv.URL(src), srv.URL(dst), func() {
		srv.Exec(t, src, fmt.Sprintf(`UPDATE huge SET t = t || 'changed' WHERE id = 1;
			INSERT INTO huge SELECT 4, string_agg(md5((g * 3)::text), ''), NULL FROM generate_series(1, %d) g`, mib<<15))
		time.Sleep(2 * time.Second)
	})
	n, differ, dups := pgDiff(t, srv, src, srv, dst, "huge", "id")
	if n != 4 || differ != 0 || dups != 0 {
		t.Fatalf("huge: %d rows compared, %d differ, %d duplicates", n, differ, dups)
	}
	var size int64
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT length(t) FROM huge WHERE id = 4`).Scan(&size); err != nil || size != int64(mib)<<20 {
		t.Fatalf("the %d MiB value inserted during CDC is %d bytes at the destination (%v)", mib, size, err)
	}
	mustFerry(t, "verify", srv.URL(src), srv.URL(dst))
}

// TestHostileHugeValuesMySQL: a 100 MB LONGTEXT and LONGBLOB from MariaDB
// (10 MB outside the full suite),
// copied and then changed during CDC.
func TestHostileHugeValuesMySQL(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Start(t, mysqltest.WithArgs("--max-allowed-packet=1G"))
	pg := pgtest.Shared(t)
	src, dst := mysqlDatabase(t, my, "huge"), pg.CreateDatabase(t, "huge")
	db := my.Connect(t, src)
	mib := hugeMiB()
	for _, stmt := range []string{
		"CREATE TABLE huge (id int PRIMARY KEY, t longtext, b longblob)",
		fmt.Sprintf("INSERT INTO huge VALUES (1, REPEAT('0123456789abcdef', %d), NULL), (2, NULL, REPEAT(X'00FF7F80', %d)), (3, 'small', X'00')", mib<<16, mib<<18),
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	syncWithChanges(t, "hostile-huge-my", my.URL(src), pg.URL(dst), func() {
		for _, stmt := range []string{
			"UPDATE huge SET t = CONCAT(t, 'changed') WHERE id = 1",
			fmt.Sprintf("INSERT INTO huge VALUES (4, REPEAT('fedcba9876543210', %d), NULL)", mib<<16),
		} {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		time.Sleep(2 * time.Second)
	})
	a := readMyRows(t, db, "SELECT CAST(id AS CHAR), SHA2(t, 256), SHA2(b, 256), CAST(LENGTH(t) AS CHAR), CAST(LENGTH(b) AS CHAR) FROM huge", 5)
	b := readPGRows(t, pg, dst, fmt.Sprintf(`SELECT id::text, encode(sha256(convert_to(t, 'UTF8')), 'hex'), encode(sha256(b), 'hex'), octet_length(t)::text, length(b)::text FROM %s`,
		pgx.Identifier{src, "huge"}.Sanitize()), 5)
	sameRows(t, "huge", a, b)
}

// TestHostileTextBytesMySQL: MariaDB text that PostgreSQL cannot hold or
// that is not UTF-8 on disk. A NUL byte in a varchar is refused with an error
// naming the table, column and key, in the copy and in CDC, and nothing of
// the refused batch is written (a rerun refuses it again instead of skipping
// it). latin1 columns (bytes 0x80-0xFF, which are not UTF-8) arrive as the
// characters MariaDB itself reads them as, in the copy and in CDC; bytes in
// varbinary arrive as they are.
func TestHostileTextBytesMySQL(t *testing.T) {
	requireMariaDB(t)
	my, pg := mysqltest.Shared(t), pgtest.Shared(t)
	src, dst := mysqlDatabase(t, my, "bytes"), pg.CreateDatabase(t, "bytes")
	db := my.Connect(t, src)
	all := make([]byte, 0, 128)
	for c := 0x80; c <= 0xff; c++ {
		all = append(all, byte(c))
	}
	for _, stmt := range []string{
		"CREATE TABLE nul (id int PRIMARY KEY, v varchar(20), raw varbinary(20))",
		"INSERT INTO nul VALUES (1, 'ok', X'00'), (2, CONCAT('a', CHAR(0), 'b'), X'00'), (3, 'fine', NULL)",
		"CREATE TABLE nulcdc (id int PRIMARY KEY, v varchar(20))",
		"INSERT INTO nulcdc VALUES (1, 'ok')",
		"CREATE TABLE l1 (id int PRIMARY KEY, c varchar(200) CHARACTER SET latin1, t text CHARACTER SET latin1, raw varbinary(200)) DEFAULT CHARSET latin1",
		fmt.Sprintf("INSERT INTO l1 VALUES (1, X'636166E9', X'%X', X'%X'), (2, 'plain', NULL, X'FFFE00'), (3, X'80', X'81', X'C3')", all, all),
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	pgCount := func(table, where string) int {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s`, pgx.Identifier{src, table}.Sanitize(), where)
		if err := pg.Connect(t, dst).QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	t.Run("NUL in the copy", func(t *testing.T) {
		args := []string{"sync", my.URL(src), pg.URL(dst), "--tables", "*.nul", "--name", "hostile-nul", "--state-dir", t.TempDir(), "--until", "caught-up"}
		for run := 0; run < 2; run++ {
			r := ferry(t, args...)
			if r.code != 1 {
				t.Fatalf("run %d: want exit 1, got %s", run, r)
			}
			for _, w := range []string{src + ".nul", "column v", "key (id=2)", "NUL character", "cannot store"} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("run %d: stderr lacks %q:\n%s", run, w, r.stderr)
				}
			}
			if n := pgCount("nul", "id = 2 OR v LIKE 'a%'"); n != 0 {
				t.Fatalf("run %d: the refused row (or a cut version of it) was written", run)
			}
		}
	})
	t.Run("NUL in CDC", func(t *testing.T) {
		args := []string{"sync", my.URL(src), pg.URL(dst), "--tables", "*.nulcdc", "--name", "hostile-nulcdc", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none"}
		bg := startFerry(t, args...)
		if !bg.waitFor(t, "change data capture starting", 2*time.Minute) {
			t.Fatalf("CDC never started:\n%s", bg.stderr.String())
		}
		if _, err := db.Exec("INSERT INTO nulcdc VALUES (10, CONCAT('x', CHAR(0), 'y'))"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-bg.done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("ferry kept running after a change it cannot apply:\n%s", bg.stderr.String())
		}
		if code := bg.cmd.ProcessState.ExitCode(); code != 1 {
			t.Fatalf("exit %d:\n%s", code, bg.stderr.String())
		}
		for _, w := range []string{"nulcdc", "column v", "key (id=10)", "NUL character"} {
			if !strings.Contains(bg.stderr.String(), w) {
				t.Errorf("stderr lacks %q:\n%s", w, bg.stderr.String())
			}
		}
		if n := pgCount("nulcdc", "id = 10"); n != 0 {
			t.Fatal("the refused change was written")
		}
		// The position did not move past the refused change.
		r := ferry(t, append(args, "--until", "caught-up")...)
		if r.code != 1 || !strings.Contains(r.stderr, "key (id=10)") {
			t.Fatalf("the rerun did not stop at the refused change again: %s", r)
		}
	})
	t.Run("latin1 bytes", func(t *testing.T) {
		syncWithChanges(t, "hostile-latin1", my.URL(src), pg.URL(dst), func() {
			for _, stmt := range []string{
				fmt.Sprintf("INSERT INTO l1 VALUES (10, X'%X', X'E9E8FF', X'80FF')", all[:60]),
				"UPDATE l1 SET c = CONCAT(c, X'A4'), t = X'9D8F' WHERE id = 2",
			} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			time.Sleep(time.Second)
		}, "--tables", "*.l1")
		a := readMyRows(t, db, "SELECT CAST(id AS CHAR), HEX(CONVERT(c USING utf8mb4)), HEX(CONVERT(t USING utf8mb4)), HEX(raw) FROM l1", 4)
		b := readPGRows(t, pg, dst, fmt.Sprintf(`SELECT id::text, upper(encode(convert_to(c, 'UTF8'), 'hex')), upper(encode(convert_to(t, 'UTF8'), 'hex')), upper(encode(raw, 'hex')) FROM %s`,
			pgx.Identifier{src, "l1"}.Sanitize()), 4)
		sameRows(t, "l1", a, b)
		if a["1"][1] != "636166C3A9" {
			t.Errorf("MariaDB reads latin1 café as %s", a["1"][1])
		}
	})
}
