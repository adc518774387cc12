package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPostgresToNATSTableCreatedDuringCDC: a table created at the source
// while a flow streams to NATS joins the flow as it does for a table
// destination. Its rows (those of its CREATE's own transaction too) arrive
// as read events of an incremental snapshot, which runs while the table
// changes; its changes as c, u and d events. The state a consumer rebuilds
// from the stream equals the source's. A table dropped at the source is no
// longer followed. Both are schema events (CREATE, DROP) on
// SUBJECT.__schema, in stream order.
func TestPostgresToNATSTableCreatedDuringCDC(t *testing.T) {
	ns := startNATS(t)
	tableCreatedDuringCDC(t, "evnewt", ns.ClientURL()+"/?stream=newt&subject=newt", true, func(t *testing.T) []busMsg {
		return readNATS(t, ns.ClientURL(), "newt")
	})
}

// TestPostgresToKafkaTableCreatedDuringCDC is the same flow to Kafka,
// where the incremental snapshot's progress is kept with the checkpoint
// in the flow's Kafka transactions. Kafka orders records per partition
// only: the schema events are checked, not their place among the others.
func TestPostgresToKafkaTableCreatedDuringCDC(t *testing.T) {
	brokers := kafkaBrokers(t)
	dst := "kafka://" + brokers[0] + "/?topic=newt.{schema}.{table}&checkpoint_topic=newt_checkpoints"
	if len(brokers) > 1 {
		dst += "&brokers=" + strings.Join(brokers[1:], ",")
	}
	tableCreatedDuringCDC(t, "evnewtk", dst, false, func(t *testing.T) []busMsg {
		var out []busMsg
		for _, m := range readKafka(t, brokers, []string{"newt.public.events", "newt.public.orders", "newt.__schema"}, 3, true) {
			out = append(out, m.busMsg)
		}
		return out
	})
}

// tableCreatedDuringCDC runs the flow of the tests above to dst (subjects
// or topics newt.SCHEMA.TABLE) and checks what read gives a consumer,
// in stream order when ordered.
func tableCreatedDuringCDC(t *testing.T, name, dst string, ordered bool, read func(*testing.T) []busMsg) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, name)
	pgShop(t, srv, src, 200)
	srv.Exec(t, src, `CREATE TABLE olds (id int PRIMARY KEY, v text); INSERT INTO olds VALUES (1, 'a')`)
	args := []string{"sync", srv.URL(src), dst, "--name", name, "--state-dir", t.TempDir(),
		"--batch-rows", "250", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `
		CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, n numeric(10,2));
		INSERT INTO events SELECT g, 'k' || (g % 7), g * 0.5 FROM generate_series(1, 3000) g`)
	if !bg.waitFor(t, "table created at the source joined the flow", 60*time.Second) {
		t.Fatalf("the created table did not join the flow:\n%s", tail(bg.stderr.String(), 30))
	}
	// Changes while it is copied (chunk after chunk), and after.
	for i := 0; i < 5; i++ {
		srv.Exec(t, src, fmt.Sprintf(`UPDATE events SET kind = 'upd' || kind WHERE id %% 10 = %[1]d; DELETE FROM events WHERE id %% 97 = %[1]d;
			INSERT INTO events SELECT 10000 * (%[1]d + 1) + g, 'late', 1 FROM generate_series(1, 20) g`, i))
	}
	if !bg.waitFor(t, "incremental snapshot done", 120*time.Second) {
		t.Fatalf("the created table was not copied:\n%s", tail(bg.stderr.String(), 30))
	}
	// A chunk's rows go once the stream reaches its watermark, not at
	// the next heartbeat (10 s) when that batch came before the chunk.
	done := result{stderr: bg.stderr.String()}.logLine("incremental snapshot done")
	if took, _ := done["took"].(float64); time.Duration(took) > 9*time.Second {
		t.Errorf("the incremental snapshot of 3000 rows took %v", time.Duration(took))
	}
	srv.Exec(t, src, `UPDATE events SET n = -1 WHERE id < 100; DELETE FROM events WHERE id BETWEEN 100 AND 110; UPDATE olds SET v = 'b'; DROP TABLE olds`)
	if !bg.waitFor(t, "table dropped at the source: no longer followed; its destination table stays", 60*time.Second) {
		t.Fatalf("the dropped table was not seen:\n%s", tail(bg.stderr.String(), 30))
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, bg.stderr.String())
	}
	mustFerry(t, append(args, "--until", "caught-up")...)

	msgs := read(t)
	uniqueIDs(t, msgs)
	checkTableSchemaEvents(t, msgs, ordered)
	// PostgreSQL reads chunks in physical order, where an updated row
	// moves: read again, it has a change event between its reads.
	ops, readAgain := map[string]int{}, map[string]bool{}
	for _, m := range msgs {
		if m.Subject != "newt.public.events" || m.Value == nil {
			continue
		}
		k := string(m.Key)
		var ev struct {
			Op     string         `json:"op"`
			Source map[string]any `json:"source"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		ops[ev.Op+"/"+fmt.Sprint(ev.Source["snapshot"])]++
		switch ev.Op {
		case "r":
			if readAgain[k] {
				t.Errorf("key %s of the created table has a read event after another, with no change between", k)
			}
			readAgain[k] = true
		case "c", "u":
			readAgain[k] = false
		}
	}
	t.Logf("%d messages; events of the created table: %v", len(msgs), ops)
	for _, op := range []string{"r/incremental", "c/false", "u/false", "d/false"} {
		if ops[op] == 0 {
			t.Errorf("no %s event of the created table", op)
		}
	}
	// A key deleted during the copy may get a d event and no read event
	// before it (its row was read in a chunk whose window saw the delete):
	// rebuilt without the strict check.
	st := rebuildOverlapping(t, msgs)
	sameState(t, "events", st["newt.public.events"], sourceRows(t, srv, src,
		`SELECT '{"id":' || id || '}', json_build_object('id', id, 'kind', kind, 'n', n::text)::text FROM events`))
	sameState(t, "orders", st["newt.public.orders"], sourceRows(t, srv, src, ordersQuery))
}

// checkTableSchemaEvents checks the schema events of the flow above: one
// CREATE of public.events with its columns and key, one DROP of
// public.olds; when ordered, the CREATE before the table's first event
// and the DROP after every change of it (its update in the DROP's own
// transaction too).
func checkTableSchemaEvents(t *testing.T, msgs []busMsg, ordered bool) {
	t.Helper()
	type tableChange struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Table struct {
			PrimaryKeyColumnNames []string                `json:"primaryKeyColumnNames"`
			Columns               []struct{ Name string } `json:"columns"`
		} `json:"table"`
	}
	created, dropped, firstEvent := -1, -1, -1
	for i, m := range msgs {
		if m.Subject == "newt.public.events" && firstEvent < 0 {
			firstEvent = i
		}
		if m.Subject != "newt.__schema" {
			continue
		}
		var ev struct {
			Source       map[string]any `json:"source"`
			TableChanges []tableChange  `json:"tableChanges"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil || len(ev.TableChanges) != 1 {
			t.Fatalf("schema event %s: %v", m.Value, err)
		}
		tc := ev.TableChanges[0]
		var cols []string
		for _, c := range tc.Table.Columns {
			cols = append(cols, c.Name)
		}
		switch tc.Type + " " + tc.ID {
		case `CREATE "public"."events"`:
			if created >= 0 {
				t.Errorf("a second CREATE of public.events: %s", m.Value)
			}
			created = i
			if fmt.Sprint(cols, tc.Table.PrimaryKeyColumnNames) != "[id kind n] [id]" || ev.Source["table"] != "events" {
				t.Errorf("CREATE of public.events: %s", m.Value)
			}
		case `DROP "public"."olds"`:
			if dropped >= 0 {
				t.Errorf("a second DROP of public.olds: %s", m.Value)
			}
			dropped = i
			if fmt.Sprint(cols) != "[id v]" {
				t.Errorf("DROP of public.olds, want its last shape: %s", m.Value)
			}
		default:
			t.Errorf("unexpected schema event %s", m.Value)
		}
	}
	if created < 0 || dropped < 0 {
		t.Fatalf("schema events: CREATE of events at %d, DROP of olds at %d; want both", created, dropped)
	}
	if !ordered {
		return
	}
	if firstEvent < created {
		t.Errorf("the first event of public.events (%d) comes before its CREATE (%d)", firstEvent, created)
	}
	update := -1
	for i, m := range msgs {
		if m.Subject != "newt.public.olds" || !strings.Contains(string(m.Value), `"op":"u"`) {
			continue
		}
		update = i
		if i > dropped {
			t.Errorf("an update of public.olds at %d, after its DROP at %d", i, dropped)
		}
	}
	if update < 0 {
		t.Errorf("no update event of public.olds before its DROP (at %d)", dropped)
	}
}

// TestPostgresToNATSTableCreatedDuringCDCKilled: killed (SIGKILL) while
// it copies a table created during CDC, the flow resumes that copy from
// its last chunk in the next run, which ends (--until caught-up) once the
// copy is done; the state a consumer rebuilds from the stream (chunks sent
// again after the kill included) equals the source's.
func TestPostgresToNATSTableCreatedDuringCDCKilled(t *testing.T) {
	srv := pgtest.Shared(t)
	ns := startNATS(t)
	src := srv.CreateDatabase(t, "evnewtkill")
	pgShop(t, srv, src, 100)
	args := []string{"sync", srv.URL(src), ns.ClientURL() + "/?stream=newtk&subject=newtk", "--name", "evnewtkill", "--state-dir", t.TempDir(),
		"--batch-rows", "100", "--log-format", "json", "--progress", "none"}
	// 1000 rows/s: the copy of 3000 rows takes 3 s, killed within.
	bg := startFerry(t, append(args, "--max-rate", "1000")...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, n numeric(10,2));
		INSERT INTO events SELECT g, 'k' || (g % 7), g * 0.5 FROM generate_series(1, 3000) g`)
	if !bg.waitFor(t, "incremental snapshot", 60*time.Second) {
		t.Fatalf("the created table was not copied:\n%s", tail(bg.stderr.String(), 30))
	}
	srv.Exec(t, src, `UPDATE events SET kind = 'upd' WHERE id % 10 = 0; DELETE FROM events WHERE id % 97 = 0`)
	time.Sleep(time.Second)
	if code := bg.signal(t, syscall.SIGKILL); code == 0 {
		t.Fatalf("ferry exited 0 after SIGKILL")
	}
	if done := (result{stderr: bg.stderr.String()}).logLine("incremental snapshot done"); done != nil {
		t.Fatalf("the copy ended before the kill:\n%s", tail(bg.stderr.String(), 10))
	}
	srv.Exec(t, src, `UPDATE events SET n = -1 WHERE id % 10 = 1; INSERT INTO events VALUES (9999, 'while down', 2)`)
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	start, done := r.logLine("incremental snapshot"), r.logLine("incremental snapshot done")
	if start == nil || done == nil {
		t.Fatalf("the resumed run did not finish the copy:\n%s", r)
	}
	if from, _ := start["from"].(string); from == "" {
		t.Errorf("the copy started over instead of resuming from its last chunk: %v", start)
	}
	t.Logf("resumed: %v; done: %v", start, done)

	msgs := readNATS(t, ns.ClientURL(), "newtk")
	uniqueIDs(t, msgs)
	st := rebuildOverlapping(t, msgs)
	sameState(t, "events", st["newtk.public.events"], sourceRows(t, srv, src,
		`SELECT '{"id":' || id || '}', json_build_object('id', id, 'kind', kind, 'n', n::text)::text FROM events`))
	sameState(t, "orders", st["newtk.public.orders"], sourceRows(t, srv, src, ordersQuery))
}
