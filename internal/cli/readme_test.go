package cli_test

import (
	"os"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/all"
	"github.com/ferrydb/ferry/internal/cli"
)

// The README's capability table is what the connectors' types say, so it is
// never written by hand twice. Regenerate it with `ferry connectors`.
func TestREADMECapabilityTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- capability-table -->\n")
	table, _, ok2 := strings.Cut(rest, "<!-- /capability-table -->")
	if !ok || !ok2 {
		t.Fatal("README.md lacks the capability-table markers")
	}
	want := cli.CapabilityTable()
	if r, ok := connector.Lookup("duckdb"); ok && !connector.Discover(r.Prototype).Abilities.Destination {
		// Built without -tags duckdb: the README shows the binary with the
		// DuckDB connector (scripts/test builds it), this one has a
		// placeholder; everything else must match.
		table, want = withoutConnector(table, "duckdb"), withoutConnector(want, "duckdb")
	}
	if table != want {
		t.Fatalf("README.md's capability table is stale; replace it with the output of `ferry connectors` (built with -tags duckdb):\n%s", want)
	}
}

// withoutConnector drops a connector's row and column from the table.
func withoutConnector(table, scheme string) string {
	var out []string
	col := -1
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, " | ")
		if strings.HasPrefix(line, "| "+scheme+" | ") {
			continue
		}
		if strings.HasPrefix(line, "| ability |") {
			for i, c := range cells {
				if strings.TrimSuffix(c, " |") == scheme {
					col = i
				}
			}
		}
		if col > 0 && strings.HasPrefix(line, "| ") && len(cells) > col {
			cells = append(cells[:col:col], cells[col+1:]...)
		}
		out = append(out, strings.Join(cells, " | "))
	}
	return strings.Join(out, "\n")
}
