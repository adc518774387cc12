package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o666); err != nil {
		t.Fatal(err)
	}
}

// TestPartitionJSONL splits a 50,000-line file into partitions of about 5,000
// rows and reads each row exactly once, then resumes a partition from a
// cursor in its middle.
func TestPartitionJSONL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var sb strings.Builder
	const total = 50000
	for i := range total {
		// Lines of varying length, so boundaries fall mid-line.
		fmt.Fprintf(&sb, `{"id":%d,"name":"row %d%s","v":%d.5}`+"\n", i, i, strings.Repeat("x", i%37), i)
	}
	writeFile(t, filepath.Join(dir, "big.jsonl"), sb.String())

	src := openDir(t, dir, formatJSONL)
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].EstimatedRows < total*8/10 || tables[0].EstimatedRows > total*12/10 {
		t.Fatalf("tables: %+v", tables[0])
	}
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 5000, BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Partitions); n < 8 || n > 12 {
		t.Fatalf("%d partitions, want about 10", n)
	}
	seen := make([]int, total)
	var prevUpper string
	for i, p := range plan.Partitions {
		if p.ID != fmt.Sprintf("big/%04d", i) || p.Index != i {
			t.Errorf("partition %d is %q", i, p.ID)
		}
		if i == 0 && p.Lower != "0" || i > 0 && p.Lower != prevUpper {
			t.Errorf("partition %s starts at %s, previous ended at %s", p.ID, p.Lower, prevUpper)
		}
		prevUpper = p.Upper
		var rows int
		err := src.ReadPartition(ctx, tables[0], p, "", func(b *model.RowBatch) error {
			if len(b.Rows) > 1000 {
				return fmt.Errorf("batch of %d rows", len(b.Rows))
			}
			for _, r := range b.Rows {
				seen[r[0].(int64)]++
			}
			rows += len(b.Rows)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if est := p.EstimatedRows; est < int64(rows)*7/10 || est > int64(rows)*13/10 {
			t.Errorf("partition %s: estimated %d rows, read %d", p.ID, est, rows)
		}
	}
	if want := strconv.Itoa(sb.Len()); prevUpper != want {
		t.Errorf("last partition ends at %s, want %s", prevUpper, want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}

	// Resume partition 3 from the cursor of its first batch.
	p := plan.Partitions[3]
	var first []int64
	var cursor model.Cursor
	err = src.ReadPartition(ctx, tables[0], p, "", func(b *model.RowBatch) error {
		for _, r := range b.Rows {
			first = append(first, r[0].(int64))
		}
		cursor = b.Cursor
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("emit's error not returned: %v", err)
	}
	var rest []int64
	err = src.ReadPartition(ctx, tables[0], p, cursor, func(b *model.RowBatch) error {
		for _, r := range b.Rows {
			rest = append(rest, r[0].(int64))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := append(first, rest...)
	for i := 1; i < len(all); i++ {
		if all[i] != all[i-1]+1 {
			t.Fatalf("resumed partition skips or repeats: %d after %d", all[i], all[i-1])
		}
	}
	if len(first) != 1000 || len(rest) == 0 {
		t.Errorf("first batch %d rows, rest %d", len(first), len(rest))
	}
	err = src.ReadPartition(ctx, tables[0], p, "12", func(*model.RowBatch) error { return nil })
	mustContain(t, err, "big/0003", `cursor "12"`)
}

// TestPartitionCSV splits a CSV file whose records span lines inside quotes.
func TestPartitionCSV(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("\xEF\xBB\xBFid,note\r\n") // a spreadsheet's BOM and CRLF
	const total = 3000
	note := func(i int) string { return fmt.Sprintf("line one of %d\n\"two\",\n%s", i, strings.Repeat("\n", i%5)) }
	for i := range total {
		sb.WriteString(strconv.Itoa(i) + "," + string(appendCSVField(nil, note(i))) + "\r\n")
	}
	writeFile(t, filepath.Join(dir, "s.notes.csv"), sb.String())
	src := openDir(t, dir, formatCSV)
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tbl := tables[0]
	if tbl.Namespace != (model.Namespace{Schema: "s", Table: "notes"}) || len(tbl.Columns) != 2 || tbl.Columns[0].Name != "id" || tbl.Columns[1].Type.Kind != model.KindText {
		t.Fatalf("table %+v", tbl)
	}
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Partitions) < 5 {
		t.Fatalf("%d partitions, want several", len(plan.Partitions))
	}
	seen := make([]int, total)
	var estimated int64
	for _, p := range plan.Partitions {
		estimated += p.EstimatedRows
		err := src.ReadPartition(ctx, tbl, p, "", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				id, err := strconv.Atoi(r[0].(string))
				if err != nil {
					return err
				}
				if r[1] != note(id) {
					return fmt.Errorf("row %d: note %q", id, r[1])
				}
				seen[id]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}
	if estimated != total {
		t.Errorf("partitions estimate %d rows, want the exact %d", estimated, total)
	}
}

func TestInference(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "inferred.jsonl"),
		`{"id":1,"name":"a","price":1.5,"ok":true,"tags":["x"],"meta":{"k":1},"big":123456789012345678901234,"mixed":1,"nul":null}`+"\n"+
			"\n"+
			`{"id":2,"name":"b","price":2,"ok":false,"tags":[],"meta":null,"big":5,"mixed":"s","extra":"late"}`+"\n")
	writeFile(t, filepath.Join(dir, "plain.csv"), "a,b\n1,\n,\"\"\n")
	src := openDir(t, dir, formatJSONL)
	got, tables, _ := readAll(t, src, connector.PlanOptions{})
	tbl := tables[0]
	kinds := map[string]model.Kind{}
	var names []string
	for _, c := range tbl.Columns {
		kinds[c.Name] = c.Type.Kind
		names = append(names, c.Name)
		if !c.Nullable {
			t.Errorf("inferred column %s is not nullable", c.Name)
		}
	}
	if want := "id name price ok tags meta big mixed nul extra"; strings.Join(names, " ") != want {
		t.Errorf("columns %q, want %q", names, want)
	}
	wantKinds := map[string]model.Kind{
		"id": model.KindInt64, "name": model.KindText, "price": model.KindFloat64, "ok": model.KindBool,
		"tags": model.KindJSON, "meta": model.KindJSON, "big": model.KindDecimal, "mixed": model.KindJSON,
		"nul": model.KindText, "extra": model.KindText,
	}
	for k, v := range wantKinds {
		if kinds[k] != v {
			t.Errorf("column %s inferred as %s, want %s", k, kinds[k], v)
		}
	}
	if len(tbl.PrimaryKey) != 0 {
		t.Errorf("inferred primary key %v", tbl.PrimaryKey)
	}
	want := []model.Row{
		{int64(1), "a", 1.5, true, `["x"]`, `{"k":1}`, "123456789012345678901234", "1", nil, nil},
		{int64(2), "b", 2.0, false, `[]`, nil, "5", `"s"`, nil, "late"},
	}
	compareRows(t, tbl.Columns, want, got["inferred"])

	csvGot, csvTables, _ := readAll(t, openDir(t, dir, formatCSV), connector.PlanOptions{})
	compareRows(t, csvTables[0].Columns, []model.Row{{"1", nil}, {nil, ""}}, csvGot["plain"])
}

func TestMalformed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "bad.jsonl")
	writeFile(t, jsonl, `{"id":1}`+"\n"+`{"id":2}`+"\n"+`{"id":3,`+"\n")
	readErr := func(format string) error {
		src := openDir(t, dir, format)
		tables, err := src.Tables(ctx)
		if err != nil {
			return err
		}
		plan, err := src.Plan(ctx, tables, connector.PlanOptions{})
		if err != nil {
			return err
		}
		for _, p := range plan.Partitions {
			if err := src.ReadPartition(ctx, plan.Table(p.Table), p, "", func(*model.RowBatch) error { return nil }); err != nil {
				return err
			}
		}
		return nil
	}
	// Without a sidecar, inference (in Tables) reads the line first.
	mustContain(t, readErr(formatJSONL), jsonl+":3 (byte 18)", "invalid JSON", "unexpected end of JSON input")
	sidecar := filepath.Join(dir, "bad.schema.json")
	writeFile(t, sidecar, `{"namespace":{"table":"bad"},"columns":[{"name":"id","type":{"kind":"int64"}}]}`)
	mustContain(t, readErr(formatJSONL), "table bad", "partition bad/0000", jsonl+":3 (byte 18)", "invalid JSON")
	if err := os.Remove(sidecar); err != nil {
		t.Fatal(err)
	}

	// A value that does not fit the inferred type names the column and the fix.
	writeFile(t, jsonl, strings.Repeat(`{"id":1}`+"\n", inferLines)+`{"id":"two"}`+"\n")
	mustContain(t, readErr(formatJSONL), fmt.Sprintf("%s:%d", jsonl, inferLines+1), `column "id"`, "bad.schema.json")

	writeFile(t, jsonl, `{"id":1,"other":2}`+"\n")
	writeFile(t, sidecar, `{"namespace":{"table":"bad"},"columns":[{"name":"id","type":{"kind":"int64"}}]}`)
	mustContain(t, readErr(formatJSONL), jsonl+":1", `key "other" is not a column`)

	writeFile(t, jsonl, "[1]\n")
	mustContain(t, readErr(formatJSONL), jsonl+":1", "want a JSON object")

	csv := filepath.Join(dir, "bad.csv")
	writeFile(t, csv, "id\n1\n2\"\n")
	mustContain(t, readErr(formatCSV), csv+":3", "quote inside an unquoted field")
	writeFile(t, csv, "id\n1\n\"2\nmore")
	mustContain(t, readErr(formatCSV), csv+":3", "not closed")
	writeFile(t, csv, "id\n1,2\n")
	mustContain(t, readErr(formatCSV), csv+":2", "2 fields, the header has 1")
	writeFile(t, csv, "id,nope\n1,2\n")
	mustContain(t, readErr(formatCSV), csv, `header column "nope" is not a column`)
	writeFile(t, csv, "id\nx\n")
	mustContain(t, readErr(formatCSV), csv+":2", `column "id"`, `invalid syntax`)

	writeFile(t, csv, "\"id"+strings.Repeat("\nno closing quote", 1<<17))
	mustContain(t, readErr(formatCSV), csv, "header", "longer than")

	// Empty files without a sidecar have nothing to infer from.
	if err := os.Remove(sidecar); err != nil {
		t.Fatal(err)
	}
	writeFile(t, csv, "")
	mustContain(t, readErr(formatCSV), csv, "no header")
}

func TestFileChangedSincePlan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.jsonl")
	writeFile(t, path, `{"id":1}`+"\n"+`{"id":2}`+"\n")
	src := openDir(t, dir, formatJSONL)
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, `{"id":1}`+"\n")
	err = src.ReadPartition(ctx, tables[0], plan.Partitions[0], "", func(*model.RowBatch) error { return nil })
	mustContain(t, err, path, "changed since the plan")
}

func TestPlanRefusesCDC(t *testing.T) {
	src := openDir(t, t.TempDir(), formatJSONL)
	_, err := src.Plan(context.Background(), nil, connector.PlanOptions{CDC: true})
	mustContain(t, err, "no change data capture", "--mode snapshot")
	if !errs.IsConfigError(err) {
		t.Errorf("not a ConfigError: %v", err)
	}
}

func TestTablesIgnoresOwnFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := idTable(model.Namespace{Schema: "s", Table: "t"})
	c := openDir(t, dir, formatJSONL)
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, _ := c.OpenWriter(ctx)
	writeBatches(t, w, tbl, "s.t/0000", 0, 10, 10, "f")
	tables, err := c.Tables(ctx)
	if err != nil || len(tables) != 0 {
		t.Fatalf("before FinishTable: %v, %v", tables, err)
	}
	if err := c.FinishTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, ".hidden.jsonl"), "not json\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not a table\n")
	if err := os.Mkdir(filepath.Join(dir, "sub.jsonl"), 0o777); err != nil {
		t.Fatal(err)
	}
	tables, err = c.Tables(ctx)
	if err != nil || len(tables) != 1 || tables[0].Namespace != tbl.Namespace || tables[0].PrimaryKey[0] != "id" {
		t.Fatalf("tables: %+v, %v", tables, err)
	}
	if tables[0].EstimatedRows != 10 {
		t.Errorf("estimated %d rows, want 10", tables[0].EstimatedRows)
	}
	if _, err := openDir(t, filepath.Join(dir, "missing"), formatJSONL).Tables(ctx); err == nil {
		t.Error("Tables of a missing directory did not fail")
	}
}
