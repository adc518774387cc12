package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
)

// A MySQL destination table that exists already with a unique key besides
// its primary key: rows swap their values through a temporary one, twenty
// times in one transaction, and a deleted row's value goes to a new row.
// Folded by key and applied by parallel writers, that collides for a
// moment; applied in the source's order, it does not, and the flow goes on.
func TestExistingMySQLTableWithUniqueKeyAppliesSwaps(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	src, dst := mysqlDatabase(t, my, "swsrc"), mysqlDatabase(t, my, "swdst")
	const ddl = "CREATE TABLE accounts (id int PRIMARY KEY, email varchar(50) NOT NULL, n int NOT NULL DEFAULT 0, UNIQUE KEY email (email))"
	my.Exec(t, "USE `"+src+"`; "+ddl+"; INSERT INTO accounts SELECT seq, concat('e', seq), 0 FROM seq_1_to_1000")
	my.Exec(t, "USE `"+dst+"`; "+ddl)
	args := []string{"sync", my.URL(src), my.URL(dst), "--name", "myswap", "--state-dir", t.TempDir(),
		"--writers", "4", "--until", "caught-up", "--log-format", "json", "--progress", "none"}
	mustFerry(t, args...)

	var swaps strings.Builder
	swaps.WriteString("USE `" + src + "`; BEGIN;\n")
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
	my.Exec(t, swaps.String())
	r := mustFerry(t, args...)
	if r.logLine("these destination tables have unique constraints besides the primary key: their changes are applied in the source's order by one writer") == nil {
		t.Errorf("the run did not say it applies accounts in order:\n%s", r.stderr)
	}
	if v := mustFerry(t, "verify", my.URL(src), my.URL(dst)); !strings.Contains(v.stdout, "all 1 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}
