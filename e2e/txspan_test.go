package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// The huge-transaction tests run one source transaction of hugeRows
// inserts into a ledger and a debit of every account by as much, so
// sum(balance) + count(ledger) stays txTotal. Under --apply-mode
// transactional, with a destination that applies a transaction in parts
// inside one destination transaction, ferry is killed while that
// transaction holds its first part, then resumed: a reader of the
// destination never sees anything but the total, every ledger row arrives
// once, and no apply batch held more than a few parts' changes.
const (
	hugeRows  = 300_000
	hugeDebit = hugeRows / txAccounts // per account
	// hugeHeldBound is what an apply batch may hold at most: a part of the
	// PostgreSQL source (10,000 changes) and some margin, far below the
	// transaction's hugeRows + txAccounts changes.
	hugeHeldBound = 20_000
)

// hugeSides reads a side's invariant in one statement (one snapshot),
// and its ledger's rows (a million more per duplicate key).
// integer names the side's 64-bit integer type for CAST.
func hugeSides(integer string, sum, count func(ctx context.Context, q string) (int64, error), fp func(ctx context.Context) (string, error)) (txSide, func(ctx context.Context) (int64, error)) {
	side := txSide{
		sum: func(ctx context.Context) (int64, error) {
			return sum(ctx, `SELECT CAST((SELECT SUM(balance) FROM accounts) + (SELECT COUNT(*) FROM ledger) AS `+integer+`)`)
		},
		fingerprint: fp,
	}
	ledger := func(ctx context.Context) (int64, error) {
		return count(ctx, `SELECT CAST(COUNT(DISTINCT id) + 1000000 * (COUNT(*) - COUNT(DISTINCT id)) AS `+integer+`) FROM ledger`)
	}
	return side, ledger
}

func runHugeTransaction(t *testing.T, pg *pgtest.Server, src, srcURL, dstURL, name string, dst txSide, dstLedger func(ctx context.Context) (int64, error)) {
	t.Helper()
	txSetup(t, pg, src)
	pg.Exec(t, src, `CREATE TABLE ledger (id int PRIMARY KEY, amount int NOT NULL)`)
	args := []string{"sync", srcURL, dstURL, "--name", name, "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress", "none", "--apply-mode", "transactional"}
	bg := startFerryEnv(t, []string{faultpoint.Env + "=" + faultpoint.SpanPartApplied}, args...)
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	reader := startSumReader(dst)
	pg.Exec(t, src, fmt.Sprintf(`BEGIN;
		UPDATE accounts SET balance = balance - %d;
		INSERT INTO ledger SELECT g, 1 FROM generate_series(1, %d) g;
		COMMIT`, hugeDebit, hugeRows))
	if !bg.waitFor(t, faultpoint.Message, 120*time.Second) {
		t.Fatalf("ferry never held with a part of the huge transaction applied:\n%s", bg.stderr.String())
	}
	ctx := context.Background()
	if n, err := dstLedger(ctx); err != nil || n != 0 {
		t.Fatalf("with a part applied and not committed the destination's ledger has %d rows (%v), want 0", n, err)
	}
	if !bg.kill(t) {
		t.Fatalf("ferry had exited before the kill:\n%s", bg.stderr.String())
	}

	// Resumed: the source transaction is read again from the checkpoint
	// before it, and applied whole.
	t.Setenv(faultpoint.Env, "")
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	reader.halt()
	if n, err := dstLedger(ctx); err != nil || n != hugeRows {
		t.Fatalf("after the resume the destination's ledger has %d rows (a million per duplicate; %v), want %d once each:\n%s", n, err, hugeRows, r.stderr)
	}
	want, err := pgSide(t, pg, src).fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dst.fingerprint(ctx); err != nil || got != want {
		t.Fatalf("the destination's balances differ from the source's (%v)", err)
	}
	if n := reader.bad.Load(); n > 0 {
		t.Errorf("a reader of the destination saw %d of %d totals other than %d (first %d): part of the huge transaction", n, reader.reads.Load(), txTotal, reader.firstBad.Load())
	}
	if reader.reads.Load() < 10 {
		t.Fatalf("the reader summed the destination only %d times (last error %v)", reader.reads.Load(), reader.lastError.Load())
	}
	line := r.logLine("a source transaction went to the destination in parts of one destination transaction")
	if line == nil {
		t.Fatalf("the resumed run never applied the transaction in parts:\n%s", r.stderr)
	}
	peak, _ := line["held_peak"].(float64)
	if peak <= 0 || peak > hugeHeldBound {
		t.Errorf("an apply batch held %v changes of a %d-change transaction, want at most %d", line["held_peak"], hugeRows+txAccounts, hugeHeldBound)
	}
	t.Logf("%s: applied in %v parts, at most %v changes held at once; the reader summed %d times", name, line["parts"], line["held_peak"], reader.reads.Load())
}

// TestTransactionalApplyHugeTransactionInPartsPostgres: a 300,000-row
// source transaction reaches a PostgreSQL destination in parts inside one
// destination transaction; ferry killed after its first part and resumed
// applies it whole, once.
func TestTransactionalApplyHugeTransactionInPartsPostgres(t *testing.T) {
	pg := pgtest.Shared(t)
	src, dst := pg.CreateDatabase(t, "hugesrc"), pg.CreateDatabase(t, "hugedst")
	// The reader and the test query on connections of their own.
	readerConn, testConn := pg.Connect(t, dst), pg.Connect(t, dst)
	side, count := hugeSides("bigint", func(ctx context.Context, q string) (n int64, err error) {
		err = readerConn.QueryRow(ctx, q).Scan(&n)
		return n, err
	}, func(ctx context.Context, q string) (n int64, err error) {
		err = testConn.QueryRow(ctx, q).Scan(&n)
		return n, err
	}, nil)
	side.fingerprint = pgSide(t, pg, dst).fingerprint
	runHugeTransaction(t, pg, src, pg.URL(src), pg.URL(dst), "huge-pg", side, count)
}

// TestTransactionalApplyHugeTransactionInPartsMySQL is the same with a
// MariaDB destination.
func TestTransactionalApplyHugeTransactionInPartsMySQL(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	src := pg.CreateDatabase(t, "hugesrcmy")
	dst := mysqlDatabase(t, my, "hugedst")
	d := my.Connect(t, dst)
	query := func(ctx context.Context, q string) (n int64, err error) {
		err = d.QueryRowContext(ctx, q).Scan(&n)
		return n, err
	}
	side, count := hugeSides("SIGNED", query, query, mySide(t, my, dst).fingerprint)
	runHugeTransaction(t, pg, src, pg.URL(src), my.URL(dst), "huge-my", side, count)
}

// TestTransactionalApplyHugeTransactionFromMySQL: a MariaDB source's
// transaction of 50,000 inserts comes in parts (20,000 changes each); under
// --apply-mode transactional a PostgreSQL destination gets them in one
// destination transaction: killed after the first part, nothing of it is
// there; resumed, all of it, once.
func TestTransactionalApplyHugeTransactionFromMySQL(t *testing.T) {
	requireMariaDB(t)
	const rows = 50_000
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	src := mysqlDatabase(t, my, "hugemysrc")
	dst := pg.CreateDatabase(t, "hugemydst")
	my.Exec(t, "CREATE TABLE `"+src+"`.ledger (id int PRIMARY KEY, amount int NOT NULL)")
	args := []string{"sync", my.URL(src), pg.URL(dst), "--name", "huge-from-my", "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress", "none", "--apply-mode", "transactional"}
	bg := startFerryEnv(t, []string{faultpoint.Env + "=" + faultpoint.SpanPartApplied}, args...)
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	my.Exec(t, fmt.Sprintf("INSERT INTO `%s`.ledger SELECT seq, 1 FROM `%s`.seq_1_to_%d", src, src, rows))
	if !bg.waitFor(t, faultpoint.Message, 120*time.Second) {
		t.Fatalf("ferry never held with a part of the transaction applied:\n%s", bg.stderr.String())
	}
	ctx := context.Background()
	conn := pg.Connect(t, dst)
	count := func() (n int64) {
		t.Helper()
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM "`+src+`".ledger`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("with a part applied and not committed the destination has %d rows, want 0", n)
	}
	if !bg.kill(t) {
		t.Fatalf("ferry had exited before the kill:\n%s", bg.stderr.String())
	}
	t.Setenv(faultpoint.Env, "")
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if n := count(); n != rows {
		t.Fatalf("after the resume the destination has %d rows, want %d:\n%s", n, rows, r.stderr)
	}
	if line := r.logLine("a source transaction went to the destination in parts of one destination transaction"); line == nil {
		t.Fatalf("the resumed run never applied the transaction in parts:\n%s", r.stderr)
	} else if peak, _ := line["held_peak"].(float64); peak <= 0 || peak > 25_000 {
		// A part: 20,000 changes and the rest of the rows event that reached them.
		t.Errorf("an apply batch held %v changes of %d, want at most one part (about 20,000)", line["held_peak"], rows)
	}
}
