//go:build cgo && duckdb

// Command duckdbload is bench/duckdb.sh's baseline: it loads CSV files into
// a DuckDB file with DuckDB's own CSV reader, one table per file, the way a
// user would without ferry.
//
//	duckdbload FILE.duckdb TABLE=FILE.csv ...
package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "duckdbload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: duckdbload FILE.duckdb TABLE=FILE.csv ...")
	}
	db, err := sql.Open("duckdb", args[0])
	if err != nil {
		return err
	}
	defer db.Close()
	for _, a := range args[1:] {
		table, file, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("%q is not TABLE=FILE.csv", a)
		}
		q := fmt.Sprintf(`CREATE TABLE "%s" AS SELECT * FROM read_csv('%s', header = true)`,
			strings.ReplaceAll(table, `"`, `""`), strings.ReplaceAll(file, `'`, `''`))
		if _, err := db.Exec(q); err != nil {
			return fmt.Errorf("load %s: %w", file, err)
		}
		var n int64
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM "%s"`, strings.ReplaceAll(table, `"`, `""`))).Scan(&n); err != nil {
			return err
		}
		fmt.Printf("%s: %d rows\n", table, n)
	}
	return nil
}
