package e2e

import (
	"os"

	"github.com/ferrydb/ferry/model"
	"path/filepath"
	"strings"
	"testing"
)

func TestFakeToSQLiteSnapshotThenVerify(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dst.db")
	src := "fake://?tables=3&rows=20000&seed=5"
	r := mustFerry(t, "sync", src, "sqlite://"+db, "--mode", "snapshot", "--state-dir", dir, "--partition-rows", "3000", "--log-format", "json")
	if fin := r.logLine("flow finished"); fin == nil || fin["rows_copied"].(float64) != 60000 {
		t.Fatalf("final log line: %v\n%s", fin, r)
	}
	compareSQLiteWithFake(t, db, src, 0)
	v := mustFerry(t, "verify", src, "sqlite://"+db)
	if !strings.Contains(v.stdout, "all 3 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

func TestVerifyFindsTheKeysThatDiffer(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dst.db")
	src := "fake://?tables=1&rows=5000"
	mustFerry(t, "sync", src, "sqlite://"+db, "--mode", "snapshot", "--state-dir", dir)
	w := openSQLiteRW(t, db)
	for _, q := range []string{`DELETE FROM t1 WHERE id = 17`, `UPDATE t1 SET name = 'tampered' WHERE id = 4242`, `INSERT INTO t1 (id) VALUES (999999)`} {
		if _, err := w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	r := ferry(t, "verify", src, "sqlite://"+db)
	if r.code != 1 {
		t.Fatalf("verify of a tampered copy: want exit 1, got %s", r)
	}
	for _, want := range []string{"missing   id=17", "different id=4242 (columns: name)", "extra     id=999999", "source 5,000 rows, destination 5,000 rows"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestFakeToFilesAndBack(t *testing.T) {
	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "export")
			src := "fake://?tables=2&rows=7000&seed=9"
			dst := "file://" + out + "?format=" + format
			mustFerry(t, "sync", src, dst, "--state-dir", dir, "--partition-rows", "2000")
			lines := readLines(t, filepath.Join(out, "fake.t1."+format))
			header := 0
			if format == "csv" {
				header = 1
			}
			// CSV rows can span lines (quoted newlines), so count rows via verify.
			if format == "jsonl" && len(lines) != 7000+header {
				t.Fatalf("fake.t1.%s has %d lines, want 7000", format, len(lines))
			}
			if format == "jsonl" {
				for _, tbl := range []string{"t1", "t2"} {
					compareJSONLWithFake(t, filepath.Join(out, "fake."+tbl+".jsonl"), src, model.Namespace{Schema: "fake", Table: tbl})
				}
			}
			v := mustFerry(t, "verify", src, dst)
			if !strings.Contains(v.stdout, "all 2 table(s) equal") {
				t.Fatalf("verify fake vs files: %s", v)
			}
			// And load the files into SQLite.
			db := filepath.Join(dir, "back.db")
			mustFerry(t, "sync", dst, "sqlite://"+db, "--state-dir", dir)
			compareSQLiteWithFake(t, db, src, 0)
			mustFerry(t, "verify", dst, "sqlite://"+db)
		})
	}
}

func TestSQLiteToSQLiteWithSelectionAndRename(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	mustFerry(t, "sync", "fake://?tables=3&rows=3000", "sqlite://"+a, "--state-dir", dir, "--mode", "snapshot")
	r := mustFerry(t, "sync", "sqlite://"+a, "sqlite://"+b, "--state-dir", dir, "--tables", "t*,!t3", "--rename", "main.t1=main.copy_of_t1", "--log-format", "json")
	if fin := r.logLine("flow finished"); fin == nil || fin["rows_copied"].(float64) != 6000 {
		t.Fatalf("want 6000 rows copied: %s", r)
	}
	db := openSQLite(t, b)
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\_ferry%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n) //nolint:errcheck // checked by the comparison below
		tables = append(tables, n)
	}
	if strings.Join(tables, ",") != "copy_of_t1,t2" {
		t.Fatalf("destination tables %v, want copy_of_t1,t2", tables)
	}
	v := mustFerry(t, "verify", "sqlite://"+a, "sqlite://"+b, "--tables", "t*,!t3", "--rename", "main.t1=main.copy_of_t1")
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

func TestFlowFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dst.db")
	flowFile := filepath.Join(dir, "flow.yaml")
	err := os.WriteFile(flowFile, []byte(`
name: from-file
source: "fake://?tables=3&rows=1000"
destination: "sqlite://`+db+`"
mode: snapshot
tables: ["fake.*", "!fake.t2"]
rename: ["fake.t1=fake.first"]
parallel: 2
state_dir: "`+dir+`"
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	r := mustFerry(t, "sync", "-f", flowFile, "--log-format", "json")
	if fin := r.logLine("flow finished"); fin == nil || fin["flow"] != "from-file" || fin["rows_copied"].(float64) != 2000 {
		t.Fatalf("flow file run: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-file.db")); err != nil {
		t.Fatalf("state of flow from-file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("source: fake://\ndestinaton: null://\n"), 0o600) //nolint:errcheck // read back below
	if r := ferry(t, "sync", "-f", bad); r.code != 2 || !strings.Contains(r.stderr, "destinaton") {
		t.Fatalf("a misspelt key in a flow file: want exit 2 naming it, got %s", r)
	}
}

func TestPlanAndVersion(t *testing.T) {
	r := mustFerry(t, "plan", "fake://?tables=2&rows=1000000", "--partition-rows", "250000")
	for _, want := range []string{"fake.t1", "1,000,000", "total", "2,000,000", "8", "T0 for a flow started now: 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := mustFerry(t, "version"); !strings.HasPrefix(r.stdout, "ferry ") {
		t.Errorf("version: %s", r)
	}
	for _, cmd := range []string{"sync", "verify", "plan", "version"} {
		if r := mustFerry(t, cmd, "--help"); !strings.Contains(r.stdout, "Example") && !strings.Contains(r.stdout, "Examples") {
			t.Errorf("%s --help has no examples:\n%s", cmd, r.stdout)
		}
	}
}
