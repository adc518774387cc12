package cli_test

import (
	"os"
	"strings"
	"testing"

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
	if want := cli.CapabilityTable(); table != want {
		t.Fatalf("README.md's capability table is stale; replace it with the output of `ferry connectors`:\n%s", want)
	}
}
