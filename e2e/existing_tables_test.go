package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// The application's tables at the source: a child's foreign key is
// checked at commit, so an application may insert a child before its
// parent in one transaction.
const existingSource = `CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
	CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, v text);
	INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 2000) g;
	INSERT INTO child SELECT g, 1 + g % 2000, 'c' || g FROM generate_series(1, 6000) g`

// The same tables made at the destination by the user's migrations, with
// an immediate foreign key and a trigger that audits every write.
const existingDestination = `CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
	CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id) ON DELETE CASCADE, v text);
	CREATE TABLE audit (n serial PRIMARY KEY, what text NOT NULL);
	CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO audit (what) VALUES (TG_TABLE_NAME || ' ' || TG_OP); RETURN NULL; END $$;
	CREATE TRIGGER parent_audit AFTER INSERT OR UPDATE OR DELETE ON parent FOR EACH ROW EXECUTE FUNCTION audit();
	CREATE TRIGGER child_audit AFTER INSERT OR UPDATE OR DELETE ON child FOR EACH ROW EXECUTE FUNCTION audit()`

// Tables that exist already at the destination are copied and followed
// with their triggers and foreign keys kept from firing: lanes and writers
// in parallel bring children before their parents, the source's own
// transaction inserts a child first, and the audit trigger sees none of
// ferry's rows.
func TestExistingTablesKeepTriggersAndForeignKeysFromFiring(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "exsrc"), srv.CreateDatabase(t, "exdst")
	srv.Exec(t, src, existingSource)
	srv.Exec(t, dst, existingDestination)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "existing", "--state-dir", t.TempDir(),
		"--parallel", "4", "--partition-rows", "500", "--writers", "4", "--until", "caught-up", "--log-format", "json", "--progress", "none"}
	mustFerry(t, args...)
	sameRowsByID(t, srv, src, dst, "parent", "child")

	// Changes for CDC: children before their parents, a child moved to a
	// new parent, a parent deleted with its children (the source cascades).
	srv.Exec(t, src, `BEGIN;
		INSERT INTO child VALUES (100001, 90001, 'before its parent');
		INSERT INTO parent VALUES (90001, 'late parent');
		COMMIT;
		BEGIN;
		INSERT INTO child SELECT 100001 + g, 90001 + g, 'batch' FROM generate_series(1, 300) g;
		INSERT INTO parent SELECT 90001 + g, 'late ' || g FROM generate_series(1, 300) g;
		UPDATE child SET parent_id = 90001, v = 'moved' WHERE id BETWEEN 1 AND 50;
		COMMIT;
		DELETE FROM parent WHERE id BETWEEN 100 AND 140;
		UPDATE parent SET name = name || '!' WHERE id % 7 = 0`)
	mustFerry(t, args...)
	sameRowsByID(t, srv, src, dst, "parent", "child")
	d := srv.Connect(t, dst)
	var audited int64
	if err := d.QueryRow(context.Background(), `SELECT count(*) FROM audit`).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != 0 {
		t.Fatalf("the audit trigger fired %d times for rows ferry wrote", audited)
	}
	var v string
	if err := d.QueryRow(context.Background(), `SELECT v FROM child WHERE id = 100001`).Scan(&v); err != nil || v != "before its parent" {
		t.Fatalf("the child inserted before its parent: %q, %v", v, err)
	}
}

// A table with a UNIQUE column besides its key: the application swaps two
// rows' values through a temporary one (as it must, the constraint not
// being deferrable), twenty times in one transaction, and a deleted row's
// value goes to a new row. Folded by key and applied by parallel writers,
// that breaks the constraint for a moment; applied in the source's order,
// it does not, and the flow goes on.
func TestExistingTableWithUniqueColumnAppliesSwaps(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "swsrc"), srv.CreateDatabase(t, "swdst")
	const ddl = `CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL UNIQUE, n int NOT NULL DEFAULT 0)`
	srv.Exec(t, src, ddl+`; INSERT INTO accounts SELECT g, 'e' || g, 0 FROM generate_series(1, 1000) g`)
	srv.Exec(t, dst, ddl)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "swap", "--state-dir", t.TempDir(),
		"--writers", "4", "--until", "caught-up", "--log-format", "json", "--progress", "none"}
	mustFerry(t, args...)

	var swaps strings.Builder
	swaps.WriteString("BEGIN;\n")
	for i := 1; i <= 20; i++ {
		a, b := 2*i-1, 2*i
		fmt.Fprintf(&swaps, `UPDATE accounts SET email = 'swapping' WHERE id = %d;
			UPDATE accounts SET email = 'e%d', n = n + 1 WHERE id = %d;
			UPDATE accounts SET email = 'e%d', n = n + 1 WHERE id = %d;
`, a, a, b, b, a)
	}
	swaps.WriteString(`COMMIT;
		BEGIN;
		DELETE FROM accounts WHERE id = 500;
		INSERT INTO accounts VALUES (1001, 'e500', 7);
		COMMIT`)
	srv.Exec(t, src, swaps.String())
	r := mustFerry(t, args...)
	if r.logLine("these destination tables have unique constraints besides the primary key: their changes are applied in the source's order by one writer") == nil {
		t.Errorf("the run did not say it applies accounts in order:\n%s", r.stderr)
	}
	sameRowsByID(t, srv, src, dst, "accounts")
}

// A role that may not set session_replication_role is refused with exit
// code 2, naming the tables and what would fire, and the GRANT that fixes
// it, before anything is written at either side.
func TestExistingTablesRefusedWithoutReplicaRole(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "rfsrc"), srv.CreateDatabase(t, "rfdst")
	srv.Exec(t, src, existingSource)
	srv.Exec(t, dst, existingDestination)
	role := srv.CreateUser(t, "app", "pw")
	srv.Exec(t, dst, `GRANT ALL ON DATABASE `+dst+` TO `+role+`; GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role)
	r := ferry(t, "sync", srv.URL(src), srv.UserURL(role, "pw", dst), "--name", "refused", "--state-dir", t.TempDir(), "--until", "caught-up", "--progress", "none")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", r.code, r)
	}
	for _, want := range []string{"public.child (triggers child_audit; foreign keys child_parent_id_fkey)", "public.parent (triggers parent_audit; foreign keys child_parent_id_fkey)",
		"may not set session_replication_role", "GRANT SET ON PARAMETER session_replication_role TO " + role} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	var rows, slots int64
	var meta *string
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT (SELECT count(*) FROM parent) + (SELECT count(*) FROM child), to_regnamespace('_ferry')::text`).Scan(&rows, &meta); err != nil {
		t.Fatal(err)
	}
	if err := srv.Connect(t, src).QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE database = $1`, src).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || meta != nil || slots != 0 {
		t.Fatalf("the refused flow wrote: %d rows, _ferry %v, %d slots", rows, meta, slots)
	}
}
