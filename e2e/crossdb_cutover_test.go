package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// myApp is a MySQL application schema: AUTO_INCREMENT keys, defaults, a
// unique key named code in both tables (MySQL names indexes per table,
// PostgreSQL per schema), secondary indexes, a FULLTEXT index, a foreign
// key with an action, a check PostgreSQL can read and one calling a
// MySQL function, a generated column.
const myApp = `CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) NOT NULL, code VARCHAR(20),
		name VARCHAR(100) DEFAULT 'anon', active TINYINT(1) NOT NULL DEFAULT 1, created DATETIME DEFAULT CURRENT_TIMESTAMP,
		UNIQUE KEY email (email), UNIQUE KEY code (code), KEY name_idx (name), FULLTEXT KEY ft_name (name));
	CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, qty INT NOT NULL, note VARCHAR(50), code VARCHAR(20),
		total INT AS (qty * 2) STORED,
		UNIQUE KEY code (code), KEY customer_idx (customer_id, qty),
		CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE,
		CONSTRAINT qty_positive CHECK (qty > 0 AND qty <= 1000), CONSTRAINT note_upper CHECK (note = upper(note)));
	INSERT INTO customers (email, code) SELECT concat('c', seq, '@x'), concat('k', seq) FROM seq_1_to_500;
	INSERT INTO orders (customer_id, qty, code) SELECT 1 + seq % 500, 1 + seq % 9, concat('o', seq) FROM seq_1_to_3000;`

// MySQL to PostgreSQL under changes, then ferry cutover: the destination
// takes the application's inserts (fresh AUTO_INCREMENT numbers from the
// source's counter, the defaults), refuses a duplicate, an orphan and a
// row failing the check, has the secondary indexes, and what PostgreSQL
// cannot be given (the FULLTEXT index, a check calling upper()) is listed
// by ferry plan and the cutover report.
func TestCutoverMySQLToPostgres(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	src := mysqlDatabase(t, my, "xcut")
	dst := pg.CreateDatabase(t, "xcut")
	my.Exec(t, "USE `"+src+"`; "+myApp)
	flowArgs := []string{my.URL(src), pg.URL(dst), "--name", "xcut", "--state-dir", t.TempDir()}

	plan := mustFerry(t, "plan", my.URL(src), pg.URL(dst))
	for _, want := range []string{"CREATE FULLTEXT INDEX `ft_name` ON `" + src + "`.`customers` (`name`)",
		"table " + src + ".orders, column total: `total` int(11) AS (`qty` * 2) STORED becomes nothing: the generation of column total (it holds the source's values) is not created at the destination"} {
		if !strings.Contains(plan.stdout, want) {
			t.Fatalf("ferry plan does not list %q:\n%s", want, plan)
		}
	}

	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", 2*time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	// The binlog does not carry what orders' ON DELETE CASCADE deletes: the
	// flow says so when it starts.
	if warn := (result{stderr: sync.stderr.String()}).logLine("mysql: the binlog does not carry the rows a foreign key's cascade changes"); warn == nil || warn["foreign_key"] != "orders_customer" || warn["on_delete"] != "CASCADE" {
		t.Fatalf("ferry sync does not warn of orders' cascade (%v):\n%s", warn, sync.stderr.String())
	}
	// While the flow runs: two customers swap their codes (a unique index
	// at the destination would stop the flow), new rows take numbers, and
	// the last order is deleted, so the counter is past the largest id.
	db := my.Connect(t, src)
	mc, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	exec := func(q string, args ...any) int64 {
		t.Helper()
		res, err := mc.ExecContext(context.Background(), q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		id, _ := res.LastInsertId()
		return id
	}
	exec("BEGIN")
	exec("UPDATE customers SET code = 'tmp' WHERE id = 1")
	exec("UPDATE customers SET code = 'k1' WHERE id = 2")
	exec("UPDATE customers SET code = 'k2' WHERE id = 1")
	exec("COMMIT")
	newCustomer := exec("INSERT INTO customers (email, code) VALUES ('new@x', 'k-new')")
	exec("INSERT INTO orders (customer_id, qty, code) VALUES (?, 5, 'o-new')", newCustomer)
	exec("INSERT INTO orders (customer_id, qty, code) VALUES (?, 6, 'o-gone')", newCustomer)
	exec("DELETE FROM orders WHERE code = 'o-gone'")
	var nextOrder, nextCustomer, maxOrder int64
	q := "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
	if err := db.QueryRow(q, src, "orders").Scan(&nextOrder); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(q, src, "customers").Scan(&nextCustomer); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT MAX(id) FROM orders").Scan(&maxOrder); err != nil {
		t.Fatal(err)
	}
	if nextOrder <= maxOrder+1 {
		t.Fatalf("the source's orders counter is %d, want it past the largest id %d + 1", nextOrder, maxOrder)
	}

	r := mustFerry(t, append([]string{"cutover", "--verify"}, flowArgs...)...)
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	report := r.stdout + r.stderr
	for _, want := range []string{"2 sequence(s) set", "5 constraint(s) built, 0 already there", "1 not built",
		"note_upper has no form the destination's engine reads (the source's definition: CHECK (`note` = ucase(`note`)))", "all 2 table(s) equal"} {
		if !strings.Contains(report, want) {
			t.Fatalf("the cutover report lacks %q:\n%s", want, r)
		}
	}

	t.Logf("the plan:\n%s\nthe report:\n%s", plan.stdout, tail(report, 12))
	conn := pg.Connect(t, dst)
	ctx := context.Background()
	customers, orders := `"`+src+`".customers`, `"`+src+`".orders`
	// The application's inserts without an id take the source's next numbers.
	var id int64
	if err := conn.QueryRow(ctx, "INSERT INTO "+orders+" (customer_id, qty) VALUES (1, 1) RETURNING id").Scan(&id); err != nil || id != nextOrder {
		t.Fatalf("an order inserted at the destination got id %d (%v), want the source's next %d", id, err, nextOrder)
	}
	var name string
	var active, stamped bool
	err = conn.QueryRow(ctx, "INSERT INTO "+customers+" (email) VALUES ('fresh@x') RETURNING id, name, active, created > now() - interval '1 hour'").Scan(&id, &name, &active, &stamped)
	if err != nil || id != nextCustomer || name != "anon" || !active || !stamped {
		t.Fatalf("a customer inserted at the destination: id %d name %q active %v created now %v (%v); want id %d with the defaults", id, name, active, stamped, err, nextCustomer)
	}
	for _, c := range []struct{ q, state string }{
		{"INSERT INTO " + customers + " (email) VALUES ('c3@x')", "23505"},
		{"INSERT INTO " + customers + " (email, code) VALUES ('other@x', 'k2')", "23505"},
		{"INSERT INTO " + orders + " (customer_id, qty, code) VALUES (1, 1, 'o5')", "23505"},
		{"INSERT INTO " + orders + " (customer_id, qty) VALUES (999999, 1)", "23503"},
		{"INSERT INTO " + orders + " (customer_id, qty) VALUES (1, 0)", "23514"},
		{fmt.Sprintf("INSERT INTO %s (customer_id, qty, code) VALUES (%d, 2, 'o5-other')", orders, newCustomer), ""},
	} {
		_, err := conn.Exec(ctx, c.q)
		if got := pgState(err); got != c.state {
			t.Errorf("%s at the destination: %v, want SQLSTATE %q", c.q, err, c.state)
		}
	}
	// ON DELETE CASCADE came along.
	var left int
	if _, err := conn.Exec(ctx, "DELETE FROM "+customers+" WHERE id = $1", newCustomer); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+orders+" WHERE customer_id = $1", newCustomer).Scan(&left); err != nil || left != 0 {
		t.Fatalf("orders of a deleted customer: %d (%v), want 0 (ON DELETE CASCADE)", left, err)
	}
	var indexes string
	if err := conn.QueryRow(ctx, `SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1`, src).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CREATE INDEX customers_name_idx ON " + quotePG(src) + ".customers USING btree (name)",
		"CREATE UNIQUE INDEX customers_code ON " + quotePG(src) + ".customers USING btree (code)",
		"CREATE UNIQUE INDEX customers_email ON " + quotePG(src) + ".customers USING btree (email)",
		"CREATE INDEX orders_customer_idx ON " + quotePG(src) + ".orders USING btree (customer_id, qty)",
		"CREATE UNIQUE INDEX orders_code ON " + quotePG(src) + ".orders USING btree (code)",
	} {
		if !strings.Contains(indexes, want) {
			t.Errorf("the destination lacks %q; it has:\n%s", want, indexes)
		}
	}
}

// quotePG quotes a PostgreSQL name as pg_indexes prints it.
func quotePG(name string) string {
	if strings.ToLower(name) == name && !strings.ContainsAny(name, `"- `) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// pgApp is a PostgreSQL application schema: an identity and a serial key,
// a unique constraint, a unique index, an expression unique index,
// secondary indexes (one on text, which MySQL indexes only by a prefix),
// a foreign key with an action, a check MySQL can read and one calling a
// function.
const pgApp = `CREATE SCHEMA app;
	CREATE TABLE app.customers (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email varchar(100) NOT NULL,
		code varchar(20), name varchar(100), CONSTRAINT customers_email_key UNIQUE (email));
	CREATE UNIQUE INDEX customers_code_idx ON app.customers (code);
	CREATE UNIQUE INDEX customers_lower_email ON app.customers (lower(email));
	CREATE INDEX customers_name_idx ON app.customers (name);
	CREATE TABLE app.orders (id serial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES app.customers (id) ON DELETE CASCADE,
		qty int NOT NULL CONSTRAINT orders_qty_positive CHECK (qty > 0), note text, CONSTRAINT orders_note_upper CHECK (note = upper(note)));
	CREATE INDEX orders_customer_idx ON app.orders (customer_id, qty);
	CREATE INDEX orders_note_idx ON app.orders (note);
	INSERT INTO app.customers (email, code) SELECT 'c' || g || '@x', 'k' || g FROM generate_series(1, 500) g;
	INSERT INTO app.orders (customer_id, qty) SELECT 1 + g % 500, 1 + g % 9 FROM generate_series(1, 3000) g;`

// PostgreSQL to MySQL under changes, then ferry cutover: the identity and
// the serial are AUTO_INCREMENT with the source's next values, the unique
// keys, the foreign key and the check MySQL can read are enforced, the
// secondary indexes exist, and what MySQL cannot be given (an index on
// text, an expression index, a check calling upper()) is listed by ferry
// plan and the cutover report.
func TestCutoverPostgresToMySQL(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	src := pg.CreateDatabase(t, "xcutpg")
	dst := mysqlDatabase(t, my, "xcutpg")
	pg.Exec(t, src, pgApp)
	flowArgs := []string{pg.URL(src) + "&heartbeat=1s", my.URL(dst), "--tables", "app.*", "--name", "xcutpg", "--state-dir", t.TempDir()}

	plan := mustFerry(t, append([]string{"plan"}, flowArgs[:4]...)...)
	for _, want := range []string{
		"table app.orders: index orders_note_idx (btree (note)) becomes nothing (column note is longtext, which MySQL indexes only by a prefix)",
		"table app.customers: index customers_lower_email (btree (lower((email)::text))) becomes nothing (it indexes expressions)",
	} {
		if !strings.Contains(plan.stdout, want) {
			t.Fatalf("ferry plan does not list %q:\n%s", want, plan)
		}
	}

	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", 2*time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	// While the flow runs: a swap of unique codes, new rows numbered by the
	// source, and the last order deleted, so the serial is past the largest id.
	pg.Exec(t, src, `BEGIN; UPDATE app.customers SET code = 'tmp' WHERE id = 1; UPDATE app.customers SET code = 'k1' WHERE id = 2;
		UPDATE app.customers SET code = 'k2' WHERE id = 1; COMMIT;
		INSERT INTO app.customers (email, code) VALUES ('new@x', 'k-new');
		INSERT INTO app.orders (customer_id, qty) VALUES (501, 5), (501, 6);
		DELETE FROM app.orders WHERE id = (SELECT max(id) FROM app.orders);`)
	ctx := context.Background()
	var nextOrder, nextCustomer int64
	if err := pg.Connect(t, src).QueryRow(ctx, `SELECT (SELECT last_value + 1 FROM app.orders_id_seq), (SELECT last_value + 1 FROM app.customers_id_seq)`).Scan(&nextOrder, &nextCustomer); err != nil {
		t.Fatal(err)
	}

	r := mustFerry(t, append([]string{"cutover", "--verify"}, flowArgs...)...)
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	report := r.stdout + r.stderr
	t.Logf("the plan:\n%s\nthe report:\n%s", plan.stdout, tail(report, 12))
	for _, want := range []string{"2 sequence(s) set", "4 constraint(s) built, 0 already there", "2 not built",
		"app.customers.customers_lower_email (UNIQUE INDEX USING btree (lower((email)::text))): it is on expressions",
		"app.orders.orders_note_upper (", "all 2 table(s) equal"} {
		if !strings.Contains(report, want) {
			t.Fatalf("the cutover report lacks %q:\n%s", want, r)
		}
	}

	db := my.Connect(t, dst)
	res, err := db.Exec("INSERT INTO orders (customer_id, qty) VALUES (1, 1)")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := res.LastInsertId(); id != nextOrder {
		t.Fatalf("an order inserted at the destination got id %d, want the source's next %d", id, nextOrder)
	}
	res, err = db.Exec("INSERT INTO customers (email) VALUES ('fresh@x')")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := res.LastInsertId(); id != nextCustomer {
		t.Fatalf("a customer inserted at the destination got id %d, want the source's next %d", id, nextCustomer)
	}
	for _, c := range []struct {
		q    string
		code uint16
	}{
		{"INSERT INTO customers (email) VALUES ('c3@x')", 1062},
		{"INSERT INTO customers (email, code) VALUES ('other@x', 'k2')", 1062},
		{"INSERT INTO orders (customer_id, qty) VALUES (999999, 1)", 1452},
		{"INSERT INTO orders (customer_id, qty) VALUES (1, 0)", 4025},
		{"INSERT INTO orders (customer_id, qty) VALUES (501, 2)", 0},
	} {
		_, err := db.Exec(c.q)
		var me *mysql.MySQLError
		got := uint16(0)
		if errors.As(err, &me) {
			got = me.Number
		} else if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if got != c.code {
			t.Errorf("%s at the destination: %v, want error %d", c.q, err, c.code)
		}
	}
	var left int
	if _, err := db.Exec("DELETE FROM customers WHERE id = 501"); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT count(*) FROM orders WHERE customer_id = 501").Scan(&left); err != nil || left != 0 {
		t.Fatalf("orders of a deleted customer: %d (%v), want 0 (ON DELETE CASCADE)", left, err)
	}
	var indexes string
	if err := db.QueryRow(`SELECT GROUP_CONCAT(DISTINCT CONCAT(TABLE_NAME, '.', INDEX_NAME, ' unique=', 1 - NON_UNIQUE) ORDER BY TABLE_NAME, INDEX_NAME SEPARATOR '\n')
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?`, dst).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"customers.customers_code_idx unique=1", "customers.customers_email_key unique=1", "customers.customers_name_idx unique=0",
		"orders.orders_customer_idx unique=0"} {
		if !strings.Contains(indexes, want) {
			t.Errorf("the destination lacks index %q; it has:\n%s", want, indexes)
		}
	}
}
