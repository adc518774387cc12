package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// mysqlRows reads a MySQL query's rows as text.
func mysqlRows(t *testing.T, my *mysqltest.Server, db, query string) []string {
	t.Helper()
	rows, err := my.Connect(t, db).QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v [3]sql.NullString
		if err := rows.Scan(&v[0], &v[1], &v[2]); err != nil {
			t.Fatal(err)
		}
		s := make([]string, 3)
		for i, x := range v {
			s[i] = "<nil>"
			if x.Valid {
				s[i] = x.String
			}
		}
		out = append(out, strings.Join(s, "|"))
	}
	return out
}

// MySQL to PostgreSQL, cut over with --reverse: the application writes at
// PostgreSQL (identity defaults, updates, deletes) and the reverse flow
// carries it back into MySQL (foreign keys unchecked for applied rows);
// killed, it resumes; its cutover sets MySQL's AUTO_INCREMENT counters.
func TestReverseFlowMySQLToPostgres(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	old := mysqlDatabase(t, my, "xrev")
	nu := pg.CreateDatabase(t, "xrev")
	my.Exec(t, "USE `"+old+"`; "+`CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INT);
		CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, item_id BIGINT NOT NULL, body VARCHAR(50),
			CONSTRAINT notes_item FOREIGN KEY (item_id) REFERENCES items (id));
		INSERT INTO items (name, qty) SELECT concat('item ', seq), seq FROM seq_1_to_200;
		INSERT INTO notes (item_id, body) SELECT seq, concat('note ', seq) FROM seq_1_to_50;`)
	dir := t.TempDir()
	oldURL, newURL := my.URL(old), pg.URL(nu)+"&heartbeat=1s"
	// The cutover is handed to the running ferry sync, as in the runbook.
	sync := startFerry(t, "sync", oldURL, newURL, "--name", "xr", "--state-dir", dir, "--progress", "none", "--log-format", "json")
	if !sync.waitFor(t, "change data capture starting", 2*time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	out := mustFerry(t, "cutover", oldURL, newURL, "--name", "xr", "--state-dir", dir, "--reverse").stdout
	if !strings.Contains(out, `flow "xr-reverse" starts there`) {
		t.Fatalf("the cutover report lacks the way back:\n%s", out)
	}
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}

	items, notes := `"`+old+`".items`, `"`+old+`".notes`
	app := func(round int) {
		pg.Exec(t, nu, fmt.Sprintf(`
			INSERT INTO %[2]s (name, qty) SELECT 'new %[1]d-' || g, g FROM generate_series(1, 20) g;
			INSERT INTO %[3]s (item_id, body) SELECT id, 'new note %[1]d' FROM %[2]s WHERE name LIKE 'new %[1]d-%%';
			UPDATE %[2]s SET qty = qty + 1000 WHERE id %% 7 = %[1]d;
			DELETE FROM %[3]s WHERE id %% 11 = %[1]d;
			DELETE FROM %[2]s WHERE id %% 13 = %[1]d AND id NOT IN (SELECT item_id FROM %[3]s);`, round, items, notes))
	}
	same := func() {
		t.Helper()
		for _, tbl := range []string{"items", "notes"} {
			cols := "id, name, qty"
			if tbl == "notes" {
				cols = "id, item_id, body"
			}
			var want []string
			rows, err := pg.Connect(t, nu).Query(context.Background(), `SELECT `+cols+` FROM "`+old+`".`+tbl+` ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var a int64
				var b, c any
				if err := rows.Scan(&a, &b, &c); err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("%d|%v|%v", a, b, c))
			}
			rows.Close()
			got := mysqlRows(t, my, old, `SELECT `+cols+` FROM `+tbl+` ORDER BY id`)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s: MySQL has %d rows, PostgreSQL %d; first MySQL %v, PostgreSQL %v", tbl, len(got), len(want), first(got), first(want))
			}
		}
	}
	app(1)
	revArgs := []string{"sync", newURL, oldURL, "--name", "xr", "--state-dir", dir, "--reverse", "--progress", "none"}
	res := ferry(t, append(revArgs, "--until", "caught-up")...)
	if res.code != 0 {
		t.Fatalf("the reverse flow exited %d:\n%s", res.code, res)
	}
	same()

	rev := startFerry(t, append(revArgs, "--log-format", "json")...)
	if !rev.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("the reverse flow did not stream:\n%s", rev.stderr.String())
	}
	app(2)
	rev.kill(t)
	app(3)
	if res := ferry(t, append(revArgs, "--until", "caught-up")...); res.code != 0 {
		t.Fatalf("the resumed reverse flow exited %d:\n%s", res.code, res)
	}
	same()
	mustFerry(t, "verify", newURL, oldURL)

	mustFerry(t, "cutover", newURL, oldURL, "--name", "xr-reverse", "--state-dir", dir)
	var maxID, next int64
	if err := pg.Connect(t, nu).QueryRow(context.Background(), `SELECT max(id) FROM `+items).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	db := my.Connect(t, old)
	if _, err := db.Exec(`INSERT INTO items (name) VALUES ('back')`); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT id FROM items WHERE name = 'back'`).Scan(&next); err != nil || next <= maxID {
		t.Fatalf("MySQL numbered a new item %d (%v), not past PostgreSQL's %d", next, err, maxID)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

// A write to the flow's tables at the old MySQL database after a cutover
// --reverse (read from its binlog) refuses the reverse flow, exit 2.
func TestReverseRefusedAfterWritesAtMySQL(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	old := mysqlDatabase(t, my, "xrw")
	nu := pg.CreateDatabase(t, "xrw")
	my.Exec(t, "USE `"+old+"`; "+`CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL);
		CREATE TABLE scratch (id INT PRIMARY KEY);
		INSERT INTO items (name) SELECT concat('item ', seq) FROM seq_1_to_20;`)
	dir := t.TempDir()
	oldURL, newURL := my.URL(old), pg.URL(nu)+"&heartbeat=1s"
	tables := []string{"--tables", old + ".items"}
	mustFerry(t, append([]string{"sync", oldURL, newURL, "--name", "xw", "--state-dir", dir, "--until", "caught-up", "--progress", "none"}, tables...)...)
	mustFerry(t, append([]string{"cutover", oldURL, newURL, "--name", "xw", "--state-dir", dir, "--reverse"}, tables...)...)
	my.Exec(t, "USE `"+old+"`; INSERT INTO scratch VALUES (1); DELETE FROM items WHERE id = 3; INSERT INTO scratch VALUES (2)")
	res := ferry(t, append([]string{"sync", newURL, oldURL, "--name", "xw", "--state-dir", dir, "--reverse", "--until", "caught-up"}, tables...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "was written after the cutover") || !strings.Contains(res.stderr, old+".items (1 change(s))") || strings.Contains(res.stderr, "scratch") {
		t.Fatalf("a reverse flow after a write at the old MySQL database: want exit 2 naming items, got\n%s", res)
	}
}

// MySQL cannot keep a trigger from firing for the rows the reverse flow
// applies: an old MySQL table with a trigger is refused (exit 2) with the
// statements to drop it, before anything is applied.
func TestReverseIntoMySQLRefusesTriggers(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	old := mysqlDatabase(t, my, "xrt")
	nu := pg.CreateDatabase(t, "xrt")
	my.Exec(t, "USE `"+old+"`; "+`CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, touched INT DEFAULT 0);
		CREATE TRIGGER items_touch BEFORE UPDATE ON items FOR EACH ROW SET NEW.touched = OLD.touched + 1;
		INSERT INTO items (name) SELECT concat('item ', seq) FROM seq_1_to_20;`)
	dir := t.TempDir()
	oldURL, newURL := my.URL(old), pg.URL(nu)+"&heartbeat=1s"
	mustFerry(t, "sync", oldURL, newURL, "--name", "xt", "--state-dir", dir, "--until", "caught-up", "--progress", "none")
	mustFerry(t, "cutover", oldURL, newURL, "--name", "xt", "--state-dir", dir, "--reverse")
	pg.Exec(t, nu, `UPDATE "`+old+`".items SET name = 'renamed' WHERE id = 1`)
	res := ferry(t, "sync", newURL, oldURL, "--name", "xt", "--state-dir", dir, "--reverse", "--until", "caught-up")
	if res.code != 2 || !strings.Contains(res.stderr, "DROP TRIGGER `"+old+"`.`items_touch`") {
		t.Fatalf("a reverse flow into a MySQL table with a trigger: want exit 2 with DROP TRIGGER, got\n%s", res)
	}
	var name string
	if err := my.Connect(t, old).QueryRow(`SELECT name FROM items WHERE id = 1`).Scan(&name); err != nil || name != "item 1" {
		t.Fatalf("the refused reverse flow applied a change: %q (%v)", name, err)
	}
}
