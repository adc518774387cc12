package e2e

// The fault-injection suite's plumbing: a steady write load at the source
// that counts what it changed, ferry runs watched for their peak memory and
// killed or restarted like a supervisor would, markers that time the
// recovery after a fault, a row-by-row comparison that counts differing and
// duplicated rows, and the report each scenario writes (JSON and a markdown
// summary of every scenario run so far). The scenarios are in chaos_test.go.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// chaosFull reports whether the full suite runs (make chaos): full fault
// durations and data sizes. Otherwise the short version runs, inside the
// normal test command.
func chaosFull() bool { return os.Getenv("FERRY_CHAOS") == "full" }

// chaosPick returns short or full by the suite's length.
func chaosPick[T any](short, full T) T {
	if chaosFull() {
		return full
	}
	return short
}

// chaosSeed is the seed of a scenario's random choices: FERRY_CHAOS_SEED
// replays a run, otherwise the time picks one (logged).
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("FERRY_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_CHAOS_SEED=%q: %v", v, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// chaosReport is what a scenario reports.
type chaosReport struct {
	Scenario string `json:"scenario"`
	Pair     string `json:"pair"`
	Suite    string `json:"suite"` // short or full
	Fault    string `json:"fault"`
	Seed     uint64 `json:"seed,omitempty"`
	// SourceChanges counts the row changes the load committed at the source
	// (inserts, updates, deletes); for MySQL, the statements committed.
	SourceChanges int64            `json:"source_changes"`
	SourceByKind  map[string]int64 `json:"source_by_kind,omitempty"`
	// FerryChanges sums the changes ferry's runs reported applying; a change
	// replayed after a kill or an outage counts again.
	FerryChanges int64 `json:"ferry_changes"`
	// RowsCompared is the number of rows of the source compared with the
	// destination; RowsDiffer those missing, extra or different there.
	RowsCompared int64 `json:"rows_compared"`
	RowsDiffer   int64 `json:"rows_differ"`
	Duplicates   int64 `json:"duplicates"`
	// Recovery is, per fault, the time from its end until ferry made
	// progress again at the destination (a marker written at the source when
	// the fault ended became visible there, or a partition finished).
	Recovery   []string `json:"recovery"`
	RecoveryMS []int64  `json:"recovery_ms"`
	// PeakRSS is ferry's highest VmHWM over all its runs, in bytes.
	PeakRSS         int64    `json:"peak_rss_bytes"`
	BaselinePeakRSS int64    `json:"baseline_peak_rss_bytes,omitempty"`
	FerryRuns       int      `json:"ferry_runs"`
	Kills           int      `json:"kills,omitempty"`
	Exits           []string `json:"exits,omitempty"` // runs that ended by themselves during a fault, and how
	Notes           []string `json:"notes,omitempty"`
	Verify          string   `json:"verify"`
	WallSeconds     float64  `json:"wall_seconds"`

	start time.Time
}

func newReport(t *testing.T, scenario, pair, fault string) *chaosReport {
	t.Helper()
	return &chaosReport{Scenario: scenario, Pair: pair, Suite: chaosPick("short", "full"), Fault: fault, start: time.Now()}
}

func (r *chaosReport) recovered(d time.Duration) {
	r.Recovery = append(r.Recovery, d.Round(time.Millisecond).String())
	r.RecoveryMS = append(r.RecoveryMS, d.Milliseconds())
}

func (r *chaosReport) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// chaosOut is where the reports go: FERRY_CHAOS_OUT, or a directory under
// the system's temporary directory.
func chaosOut() string {
	if d := os.Getenv("FERRY_CHAOS_OUT"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "ferry-chaos")
}

// finish asserts the outcome every scenario promises (no differing row, no
// duplicate), logs the report and writes it, with the markdown summary of
// every report in the directory.
func (r *chaosReport) finish(t *testing.T) {
	t.Helper()
	r.WallSeconds = time.Since(r.start).Round(100 * time.Millisecond).Seconds()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	t.Logf("chaos report:\n%s", b)
	if r.RowsDiffer != 0 {
		t.Errorf("%d rows differ between source and destination", r.RowsDiffer)
	}
	if r.Duplicates != 0 {
		t.Errorf("%d duplicated rows at the destination", r.Duplicates)
	}
	if r.RowsCompared == 0 {
		t.Errorf("no rows were compared")
	}
	dir := chaosOut()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("chaos report not written: %v", err)
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_", "->", "-to-", ">", "").Replace(r.Scenario+"_"+r.Pair) + ".json"
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Logf("chaos report not written: %v", err)
		return
	}
	if err := writeChaosSummary(dir); err != nil {
		t.Logf("chaos summary not written: %v", err)
		return
	}
	t.Logf("chaos report: %s (summary: %s)", filepath.Join(dir, name), filepath.Join(dir, "summary.md"))
}

func writeChaosSummary(dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Strings(files)
	var b strings.Builder
	b.WriteString("# ferry fault-injection suite\n\n")
	b.WriteString("| scenario | pair | suite | fault | source changes | ferry changes | rows compared | differ | duplicates | recovery | peak RSS | runs | kills |\n")
	b.WriteString("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r chaosReport
		if err := json.Unmarshal(raw, &r); err != nil {
			continue
		}
		peak := fmt.Sprintf("%d MB", r.PeakRSS>>20)
		if r.BaselinePeakRSS > 0 {
			peak += fmt.Sprintf(" (baseline %d MB)", r.BaselinePeakRSS>>20)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %d | %d | %d | %d | %s | %s | %d | %d |\n", r.Scenario, r.Pair, r.Suite, r.Fault,
			r.SourceChanges, r.FerryChanges, r.RowsCompared, r.RowsDiffer, r.Duplicates, strings.Join(r.Recovery, ", "), peak, r.FerryRuns, r.Kills)
	}
	return os.WriteFile(filepath.Join(dir, "summary.md"), []byte(b.String()), 0o644)
}

// chaosFlow runs one flow's ferry processes: each run is watched for its
// memory, and its reported changes are summed into the report.
type chaosFlow struct {
	t    *testing.T
	args []string
	rep  *chaosReport
	cur  *background
	mem  *faults.MemWatch
}

func newChaosFlow(t *testing.T, rep *chaosReport, args ...string) *chaosFlow {
	return &chaosFlow{t: t, rep: rep, args: append(args, "--log-format", "json", "--progress", "log")}
}

// start starts a ferry run in the background (the previous one must have
// ended).
func (f *chaosFlow) start(extra ...string) *background {
	f.t.Helper()
	if f.cur != nil {
		f.t.Fatal("chaosFlow: a run is still being watched")
	}
	f.cur = startFerry(f.t, append(append([]string{}, f.args...), extra...)...)
	f.mem = faults.WatchMemory(f.cur.cmd.Process.Pid, 50*time.Millisecond)
	f.rep.FerryRuns++
	return f.cur
}

// exited reports whether the current run has ended.
func (f *chaosFlow) exited() bool {
	select {
	case err := <-f.cur.done:
		f.cur.done <- err // for later readers
		return true
	default:
		return false
	}
}

// ended accounts for a run that is over: its peak memory and the changes it
// reported (its last progress or final line).
func (f *chaosFlow) ended() string {
	f.mem.Stop()
	f.rep.PeakRSS = max(f.rep.PeakRSS, f.mem.Peak())
	out := f.cur.stderr.String()
	r := result{stderr: out}
	for _, msg := range []string{"flow finished", "flow failed", "streaming changes"} {
		if l := r.logLine(msg); l != nil {
			if n, ok := l["changes"].(float64); ok {
				f.rep.FerryChanges += int64(n)
				break
			}
			if n, ok := l["changes_applied"].(float64); ok {
				f.rep.FerryChanges += int64(n)
				break
			}
		}
	}
	f.cur, f.mem = nil, nil
	return out
}

// kill kills the current run with SIGKILL; false if it had already ended.
func (f *chaosFlow) kill() bool {
	f.t.Helper()
	alive := f.cur.kill(f.t)
	if alive {
		f.rep.Kills++
	}
	f.ended()
	return alive
}

// stop ends the current run with SIGTERM and expects a clean exit.
func (f *chaosFlow) stop() {
	f.t.Helper()
	if code := f.cur.signal(f.t, syscall.SIGTERM); code != 0 {
		f.t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, tail(f.cur.stderr.String(), 40))
	}
	f.ended()
}

// wait waits for the current run to end by itself and returns its exit code.
func (f *chaosFlow) wait(timeout time.Duration) (int, bool) {
	f.t.Helper()
	select {
	case err := <-f.cur.done:
		f.cur.done <- err
	case <-time.After(timeout):
		return 0, false
	}
	code := f.cur.cmd.ProcessState.ExitCode()
	return code, true
}

// catchUp runs ferry with --until caught-up and expects exit 0.
func (f *chaosFlow) catchUp() result {
	f.t.Helper()
	bg := f.start("--until", "caught-up")
	code, ok := f.wait(10 * time.Minute)
	if !ok {
		f.t.Fatalf("ferry --until caught-up did not finish within 10 minutes:\n%s", tail(bg.stderr.String(), 40))
	}
	out := f.ended()
	if code != 0 {
		f.t.Fatalf("ferry --until caught-up exited %d:\n%s", code, tail(out, 40))
	}
	return result{stderr: out}
}

// waitLog waits until the current run logged msg; false if it ended first.
func (f *chaosFlow) waitLog(msg string, timeout time.Duration) bool {
	f.t.Helper()
	return f.cur.waitFor(f.t, msg, timeout)
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// pgLoad is a steady write load on the pgShop tables: inserts of orders
// with their lines, updates (some of TOAST-sized notes, some leaving them
// unchanged), deletes in transactions. It counts the rows it changed in
// committed transactions, and reconnects when the source restarts.
type pgLoad struct {
	stop                     chan struct{}
	done                     chan struct{}
	ins, upd, del, txs, errs atomic.Int64
	last                     atomic.Value
}

func startPGLoad(t *testing.T, dsn string, firstID int64, seed uint64) *pgLoad {
	t.Helper()
	l := &pgLoad{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		ctx := context.Background()
		r := rand.New(rand.NewPCG(seed, 8))
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				conn.Close(ctx)
			}
		}()
		next := firstID
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			if conn == nil {
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					l.errs.Add(1)
					l.last.Store(err.Error())
					time.Sleep(100 * time.Millisecond)
					continue
				}
				conn = c
			}
			var ins, upd, del int64
			id := 1 + r.Int64N(next-1)
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				exec := func(n *int64, q string, args ...any) error {
					tag, err := tx.Exec(ctx, q, args...)
					*n += tag.RowsAffected()
					return err
				}
				switch r.IntN(8) {
				case 0, 1, 2:
					note := "new"
					if r.IntN(20) == 0 {
						note = strings.Repeat(fmt.Sprintf("%x", r.Uint64()), 500) // out-of-line TOAST
					}
					next++
					if err := exec(&ins, `INSERT INTO orders (id, customer, amount, note, tags) VALUES ($1, $2, $3, $4, ARRAY['w'])`, next-1, r.IntN(100), r.IntN(10000), note); err != nil {
						return err
					}
					return exec(&ins, `INSERT INTO lines VALUES ($1, 1, 'new', 1), ($1, 2, 'new', 2)`, next-1)
				case 3, 4:
					// Leaves a TOAST note unchanged on the rows that have one.
					return exec(&upd, `UPDATE orders SET amount = amount + 1, tags = tags || 'u'::text WHERE id = $1`, id)
				case 5:
					return exec(&upd, `UPDATE lines SET qty = qty + 1, sku = sku || 'u' WHERE order_id = $1`, id)
				case 6:
					return exec(&upd, `UPDATE orders SET note = note || 'x', customer = customer + 1 WHERE id BETWEEN $1 AND $1 + 3`, id)
				default:
					if err := exec(&del, `DELETE FROM lines WHERE order_id = $1`, id); err != nil {
						return err
					}
					return exec(&del, `DELETE FROM orders WHERE id = $1`, id)
				}
			})
			if err != nil {
				l.errs.Add(1)
				l.last.Store(err.Error())
				if conn.IsClosed() {
					conn = nil
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			l.ins.Add(ins)
			l.upd.Add(upd)
			l.del.Add(del)
			l.txs.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(l.halt)
	return l
}

func (l *pgLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// report stops the load and records what it changed; it fails a test whose
// load changed too little to prove anything.
func (l *pgLoad) report(t *testing.T, rep *chaosReport) {
	t.Helper()
	l.halt()
	rep.SourceByKind = map[string]int64{"inserted": l.ins.Load(), "updated": l.upd.Load(), "deleted": l.del.Load(), "transactions": l.txs.Load(), "failed_transactions": l.errs.Load()}
	rep.SourceChanges = l.ins.Load() + l.upd.Load() + l.del.Load()
	last, _ := l.last.Load().(string)
	t.Logf("load: %d transactions, %d rows inserted, %d updated, %d deleted; %d transactions failed (last: %s)",
		l.txs.Load(), l.ins.Load(), l.upd.Load(), l.del.Load(), l.errs.Load(), last)
	if l.txs.Load() < 200 {
		t.Fatalf("the load committed only %d transactions; the scenario proves little", l.txs.Load())
	}
}

var markerSeq atomic.Int64

// pgRecovery times a recovery: it writes a marker order at the source and
// waits until the destination has it.
func pgRecovery(t *testing.T, src *pgtest.Server, srcDB string, dst *pgtest.Server, dstDB string, since time.Time, timeout time.Duration) (time.Duration, bool) {
	t.Helper()
	id := int64(1_000_000_000_000) + markerSeq.Add(1)
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		c, err := pgx.Connect(ctx, src.AdminURL(srcDB))
		if err == nil {
			_, err = c.Exec(ctx, `INSERT INTO orders (id, customer, amount, note) VALUES ($1, 0, 0, 'recovery marker')`, id)
			c.Close(ctx)
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot write the recovery marker at the source: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		c, err := pgx.Connect(ctx, dst.AdminURL(dstDB))
		if err == nil {
			var n int
			err = c.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = $1`, id).Scan(&n)
			c.Close(ctx)
			if err == nil && n == 1 {
				return time.Since(since), true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, false
}

// pgDiff compares a table of two PostgreSQL databases row by row (the rows'
// text forms, hashed) and counts the rows missing, extra or different at
// the destination, and the destination's duplicated keys.
func pgDiff(t *testing.T, src *pgtest.Server, srcDB string, dst *pgtest.Server, dstDB, table, key string) (compared, differ, dups int64) {
	t.Helper()
	read := func(s *pgtest.Server, db string) map[string]string {
		conn := s.Connect(t, db)
		rows, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT (%s)::text, md5(x::text) FROM %s x`, "ROW("+key+")", table))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var k, h string
			if err := rows.Scan(&k, &h); err != nil {
				t.Fatal(err)
			}
			if _, seen := out[k]; seen {
				dups++
			}
			out[k] = h
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a := read(src, srcDB)
	dups = 0 // duplicates count at the destination only
	b := read(dst, dstDB)
	var examples []string
	for k, h := range a {
		if g, ok := b[k]; !ok || g != h {
			differ++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s (at destination: %v)", k, ok))
			}
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			differ++
			if len(examples) < 5 {
				examples = append(examples, k+" (only at destination)")
			}
		}
	}
	if differ > 0 {
		t.Logf("%s: %d rows differ, e.g. %s", table, differ, strings.Join(examples, "; "))
	}
	// A destination table without its key would let duplicates in unnoticed
	// by the map above: count them in SQL too.
	var sqlDups int64
	if err := dst.Connect(t, dstDB).QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) - count(DISTINCT (%s)) FROM %s`, key, table)).Scan(&sqlDups); err != nil {
		t.Fatal(err)
	}
	return int64(len(a)), differ, max(dups, sqlDups)
}

// comparePGShop fills the report's comparison of the pgShop tables.
func comparePGShop(t *testing.T, rep *chaosReport, src *pgtest.Server, srcDB string, dst *pgtest.Server, dstDB string) {
	t.Helper()
	for _, tk := range [][2]string{{"orders", "id"}, {"lines", "order_id, line"}} {
		n, d, dup := pgDiff(t, src, srcDB, dst, dstDB, tk[0], tk[1])
		rep.RowsCompared += n
		rep.RowsDiffer += d
		rep.Duplicates += dup
	}
}

// verifyFlow runs ferry verify and records its verdict.
func verifyFlow(t *testing.T, rep *chaosReport, src, dst string, tables int) {
	t.Helper()
	v := ferry(t, "verify", src, dst)
	rep.Verify = strings.TrimSpace(v.stdout)
	if i := strings.LastIndex(rep.Verify, "\n"); i >= 0 {
		rep.Verify = rep.Verify[i+1:]
	}
	if v.code != 0 || !strings.Contains(v.stdout, fmt.Sprintf("all %d table(s) equal", tables)) {
		t.Errorf("ferry verify: %s", v)
	}
}

// partitionsDone counts the flow's finished partitions at a PostgreSQL
// destination (-1 when they cannot be read).
func partitionsDone(t *testing.T, srv *pgtest.Server, db, flow string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, srv.AdminURL(db))
	if err != nil {
		return -1
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM _ferry.checkpoints WHERE flow = $1 AND key LIKE 'partition/%' AND value LIKE '%"done":true%'`, flow).Scan(&n); err != nil {
		return -1
	}
	return n
}

// chaosWait polls cond every 50 ms until it holds or timeout passes.
func chaosWait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// mysqlCount runs a count query at MySQL, -1 on error.
func mysqlCount(db *sql.DB, q string, args ...any) int64 {
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		return -1
	}
	return n
}
