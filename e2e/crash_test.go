package e2e

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// countLogs counts JSON log lines with msg whose field equals value.
func countLines(out, msg string) int {
	return strings.Count(out, `"msg":"`+msg+`"`)
}

// TestKillDuringCopyAndCDCThenResume kills ferry with SIGKILL several times,
// during the copy and during CDC, reruns the same command each time, and
// checks the destination ends exactly at the source's final state: no missing
// row, no duplicate, no wrong value; and that a rerun skips partitions an
// earlier run finished.
func TestKillDuringCopyAndCDCThenResume(t *testing.T) {
	for _, dstKind := range []string{"sqlite", "jsonl"} {
		t.Run(dstKind, func(t *testing.T) {
			dir := t.TempDir()
			const changes = 12000
			// The copy reads at most 10,000 rows a second per lane (3 lanes,
			// 120,000 rows: 4 s at least), so the first kills land in it
			// however fast the machine; a fast one finished it before the
			// second kill.
			src := "fake://?tables=3&rows=40000&changes=12000&changes_per_sec=3000&seed=11&rows_per_sec=10000"
			db := filepath.Join(dir, "dst.db")
			dst := "sqlite://" + db
			mode := "full"
			if dstKind == "jsonl" {
				// Files take no changes: kill during the copy only.
				src = "fake://?tables=3&rows=40000&seed=11&rows_per_sec=10000"
				dst = "file://" + filepath.Join(dir, "out") + "?format=jsonl"
				mode = "snapshot"
			}
			args := []string{"sync", src, dst, "--mode", mode, "--state-dir", dir, "--parallel", "3",
				"--partition-rows", "4000", "--batch-rows", "500", "--log-format", "json", "--until", "caught-up"}

			var skippedSeen, resumedSeen, killsInCopy, killsInCDC int
			// Kill points: after a delay from the start, or once CDC has started.
			plan := []struct {
				afterCDC bool
				delay    time.Duration
			}{{false, 150 * time.Millisecond}, {false, 400 * time.Millisecond}, {false, 300 * time.Millisecond},
				{true, 300 * time.Millisecond}, {true, 900 * time.Millisecond}, {true, 500 * time.Millisecond}}
			for i, p := range plan {
				if mode == "snapshot" && p.afterCDC {
					continue
				}
				bg := startFerry(t, args...)
				if p.afterCDC {
					if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
						break // finished already
					}
				} else if !bg.waitFor(t, "copy starting", 30*time.Second) {
					t.Fatalf("run %d never started copying:\n%s", i, bg.stderr.String())
				}
				time.Sleep(p.delay)
				if i == 1 {
					// On a loaded machine the delays alone may end every
					// copy run before any partition is done, and then no
					// rerun has one to skip: the second kill waits for one.
					chaosWait(30*time.Second, func() bool {
						return bg.hasExited() || partitionsDoneAt(t, dstKind, dir, db) > 0
					})
				}
				inCDC := strings.Contains(bg.stderr.String(), "change data capture starting")
				if !bg.kill(t) {
					t.Logf("run %d finished before the kill", i)
					continue
				}
				t.Logf("run %d killed (in CDC: %v); partitions done at the destination: %d", i, inCDC, partitionsDoneAt(t, dstKind, dir, db))
				if inCDC {
					killsInCDC++
				} else {
					killsInCopy++
				}
				out := bg.stderr.String()
				if strings.Contains(out, `"skipped":`) && !strings.Contains(out, `"skipped":0`) {
					skippedSeen++
				}
				if strings.Contains(out, `"resumed":`) && !strings.Contains(out, `"resumed":0`) {
					resumedSeen++
				}
			}
			final := mustFerry(t, args...)
			fin := final.logLine("flow finished")
			if fin == nil {
				t.Fatalf("final run did not finish:\n%s", final)
			}
			t.Logf("kills during copy %d, during CDC %d; runs that skipped finished partitions %d, resumed mid-partition %d",
				killsInCopy, killsInCDC, skippedSeen, resumedSeen)
			if killsInCopy == 0 {
				t.Fatal("no kill landed during the copy; the test proves nothing about copy resume")
			}
			if skippedSeen == 0 {
				t.Error("no rerun skipped a partition an earlier run had finished")
			}
			if mode == "full" {
				if killsInCDC == 0 {
					t.Error("no kill landed during CDC")
				}
				if fin["position"] != "12000" {
					t.Fatalf("final position %v, want 12000", fin["position"])
				}
				compareSQLiteWithFake(t, db, src, changes)
				v := mustFerry(t, "verify", strings.Replace(strings.Replace(src, "&rows_per_sec=10000", "", 1), "seed=11", "seed=11&snapshot=head", 1), dst)
				if !strings.Contains(v.stdout, "all 3 table(s) equal") {
					t.Fatalf("verify: %s", v)
				}
			} else {
				v := mustFerry(t, "verify", src, dst)
				if !strings.Contains(v.stdout, "all 3 table(s) equal") {
					t.Fatalf("verify: %s", v)
				}
				lines := 0
				for _, tbl := range []string{"t1", "t2", "t3"} {
					lines += len(readLines(t, filepath.Join(dir, "out", "fake."+tbl+".jsonl")))
				}
				if lines != 120000 {
					t.Fatalf("the files hold %d rows, want exactly 120000 (no duplicates, none missing)", lines)
				}
			}
		})
	}
}

// partitionsDoneAt counts the finished partitions in the checkpoints of
// TestKillDuringCopyAndCDCThenResume's destination (-1 if unreadable).
func partitionsDoneAt(t *testing.T, kind, dir, db string) int {
	t.Helper()
	if kind == "sqlite" {
		conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(1000)")
		if err != nil {
			return -1
		}
		defer conn.Close()
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM _ferry_checkpoints WHERE key LIKE 'partition/%' AND value LIKE '%"done":true%'`).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", ".ferry", "*", "partition*.json"))
	n := 0
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), `\"done\":true`) {
			n++
		}
	}
	return n
}

// TestInterruptStopsGracefully sends SIGINT during CDC: ferry exits 0 after
// checkpointing, and the next run resumes from that checkpoint, not from T0.
func TestInterruptStopsGracefully(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dst.db")
	src := "fake://?tables=2&rows=2000&changes=6000&changes_per_sec=2000&seed=4"
	args := []string{"sync", src, "sqlite://" + db, "--state-dir", dir, "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	time.Sleep(700 * time.Millisecond)
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code after SIGINT: %d\n%s", code, bg.stderr.String())
	}
	out := bg.stderr.String()
	if countLines(out, "flow finished") != 1 {
		t.Fatalf("no final line after SIGINT:\n%s", out)
	}
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	start := r.logLine("change data capture starting")
	if start == nil || start["from"] == "0" {
		t.Fatalf("the rerun did not resume from the checkpoint taken at SIGINT: %v", start)
	}
	if c := r.logLine("copy starting"); c != nil {
		t.Fatalf("the rerun copied again after a finished copy: %v", c)
	}
	compareSQLiteWithFake(t, db, src, 6000)
}

// TestRestartDiscardsState: --restart starts the flow over.
func TestRestartDiscardsState(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dst.db")
	args := []string{"sync", "fake://?tables=1&rows=3000", "sqlite://" + db, "--mode", "snapshot", "--state-dir", dir, "--log-format", "json"}
	mustFerry(t, args...)
	again := mustFerry(t, args...)
	if fin := again.logLine("flow finished"); fin["rows_written"].(float64) != 0 {
		t.Fatalf("a rerun of a finished flow wrote %v rows, want 0", fin["rows_written"])
	}
	restarted := mustFerry(t, append(args, "--restart")...)
	if fin := restarted.logLine("flow finished"); fin["rows_written"].(float64) != 3000 {
		t.Fatalf("--restart wrote %v rows, want 3000", fin["rows_written"])
	}
	compareSQLiteWithFake(t, db, "fake://?tables=1&rows=3000", 0)
}

// TestLostStateDoesNotTrustOldCheckpoints: when the state directory is lost,
// the flow plans again and must not trust the destination's checkpoints of
// the earlier plan, whose partitions had other bounds.
func TestLostStateDoesNotTrustOldCheckpoints(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dst.db")
	first := []string{"sync", "fake://?tables=1&rows=4000", "sqlite://" + db, "--mode", "snapshot", "--name", "f",
		"--state-dir", filepath.Join(dir, "state1"), "--partition-rows", "1000"}
	mustFerry(t, first...)
	// Same flow name, fresh state, more rows and other partition bounds: the
	// old "partition/fake.t1/0000" checkpoint says done, but its bounds differ.
	second := []string{"sync", "fake://?tables=1&rows=8000", "sqlite://" + db, "--mode", "snapshot", "--name", "f",
		"--state-dir", filepath.Join(dir, "state2"), "--partition-rows", "4000", "--log-format", "json"}
	r := mustFerry(t, second...)
	if fin := r.logLine("flow finished"); fin == nil || fin["rows_written"].(float64) != 8000 {
		t.Fatalf("the re-planned flow wrote %v rows, want all 8000:\n%s", fin["rows_written"], r)
	}
	compareSQLiteWithFake(t, db, "fake://?tables=1&rows=8000", 0)
}
