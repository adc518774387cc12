package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPostgresToNATSSchemaChangeAndTruncate: a column added at the source
// during CDC reaches consumers as a schema change event on
// SUBJECT.__schema, before the first change that has the column; a
// truncate is an op t event.
func TestPostgresToNATSSchemaChangeAndTruncate(t *testing.T) {
	srv := pgtest.Shared(t)
	ns := startNATS(t)
	src := srv.CreateDatabase(t, "evddl")
	pgShop(t, srv, src, 200)
	args := []string{"sync", srv.URL(src), ns.ClientURL() + "/?stream=ddl&subject=ddl", "--name", "evddl", "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `ALTER TABLE orders ADD COLUMN tier int; UPDATE orders SET tier = 3 WHERE id = 1; TRUNCATE lines`)
	if !bg.waitFor(t, "schema change sent as an event", 60*time.Second) {
		t.Fatalf("no schema change event:\n%s", bg.stderr.String())
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, bg.stderr.String())
	}
	mustFerry(t, append(args, "--until", "caught-up")...)

	msgs := readNATS(t, ns.ClientURL(), "ddl")
	schemaAt, updateAt, truncates := -1, -1, 0
	for i, m := range msgs {
		switch {
		case m.Subject == "ddl.__schema":
			var ev struct {
				TableChanges []struct {
					Type  string `json:"type"`
					Table struct {
						Columns []struct{ Name string } `json:"columns"`
					} `json:"table"`
				} `json:"tableChanges"`
			}
			if err := json.Unmarshal(m.Value, &ev); err != nil || len(ev.TableChanges) != 1 {
				t.Fatalf("schema event %s: %v", m.Value, err)
			}
			cols := ev.TableChanges[0].Table.Columns
			if ev.TableChanges[0].Type != "ALTER" || cols[len(cols)-1].Name != "tier" {
				t.Errorf("schema event %s: want an ALTER with the column tier last", m.Value)
			}
			schemaAt = i
		case m.Subject == "ddl.public.orders" && strings.Contains(string(m.Value), `"op":"u"`) && strings.Contains(string(m.Value), `"tier":3`):
			updateAt = i
		case m.Subject == "ddl.public.lines" && strings.Contains(string(m.Value), `"op":"t"`):
			truncates++
		}
	}
	if schemaAt < 0 || updateAt < 0 || schemaAt > updateAt {
		t.Errorf("schema event at %d, the update with the new column at %d: want the schema event first", schemaAt, updateAt)
	}
	if truncates != 1 {
		t.Errorf("%d truncate events for lines, want 1", truncates)
	}
}
