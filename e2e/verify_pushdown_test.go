package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

type pushdownVerified struct {
	Equal  bool `json:"equal"`
	Tables []struct {
		Table     string `json:"table"`
		Pushdown  bool   `json:"pushdown"`
		RowsRead  int64  `json:"rows_read"`
		BytesRead int64  `json:"bytes_read"`
		Diffs     []struct {
			Key     string   `json:"key"`
			Kind    string   `json:"kind"`
			Columns []string `json:"columns"`
		} `json:"diffs"`
	} `json:"tables"`
}

func verifyJSON(t *testing.T, want int, args ...string) (pushdownVerified, result) {
	t.Helper()
	r := ferry(t, append([]string{"verify", "--json"}, args...)...)
	if r.code != want {
		t.Fatalf("verify %v: want exit %d: %s", args, want, r)
	}
	var v pushdownVerified
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r)
	}
	return v, r
}

// TestPostgresVerifyPushdown: PostgreSQL on both sides hashes its rows
// itself, so verify reads a small part of what it reads through ferry, and
// still names the keys and columns that differ, as it does reading rows.
func TestPostgresVerifyPushdown(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "pdsrc"), srv.CreateDatabase(t, "pddst")
	pgShop(t, srv, src, 20000)
	// A table without a key: its whole row is the key, rows may repeat.
	srv.Exec(t, src, `CREATE TABLE audit (at int, what text);
		INSERT INTO audit SELECT g % 500, 'w' || (g % 7) FROM generate_series(1, 5000) g`)
	mustFerry(t, "sync", srv.URL(src), srv.URL(dst), "--mode", "snapshot", "--state-dir", t.TempDir())

	pushed, r := verifyJSON(t, 0, srv.URL(src), srv.URL(dst))
	rowed, _ := verifyJSON(t, 0, srv.URL(src), srv.URL(dst), "--no-pushdown")
	if !pushed.Equal || len(pushed.Tables) != 3 {
		t.Fatalf("pushdown verify of an equal copy: %s", r)
	}
	for i, tb := range pushed.Tables {
		through := rowed.Tables[i]
		if !tb.Pushdown || through.Pushdown {
			t.Fatalf("%s: pushdown %v, with --no-pushdown %v", tb.Table, tb.Pushdown, through.Pushdown)
		}
		// Rows through ferry: every row of both sides. Pushdown: the
		// bucket sums only.
		if tb.BytesRead*20 > through.BytesRead || tb.RowsRead*20 > through.RowsRead {
			t.Fatalf("%s: pushdown read %d rows / %d bytes, through ferry %d rows / %d bytes",
				tb.Table, tb.RowsRead, tb.BytesRead, through.RowsRead, through.BytesRead)
		}
	}

	srv.Exec(t, dst, `DELETE FROM orders WHERE id = 17; UPDATE orders SET amount = 0, note = 'x' WHERE id = 4242;
		INSERT INTO orders (id, customer) VALUES (999999, 1); UPDATE lines SET qty = 9 WHERE order_id = 3 AND line = 2;
		DELETE FROM audit WHERE ctid = (SELECT min(ctid) FROM audit WHERE at = 3 AND what = 'w3');
		UPDATE audit SET what = 'changed' WHERE at = 499`)
	pushed, r = verifyJSON(t, 1, srv.URL(src), srv.URL(dst))
	rowed, _ = verifyJSON(t, 1, srv.URL(src), srv.URL(dst), "--no-pushdown")
	for i := range pushed.Tables {
		a, _ := json.Marshal(pushed.Tables[i].Diffs)
		b, _ := json.Marshal(rowed.Tables[i].Diffs)
		if string(a) != string(b) {
			t.Errorf("%s: pushdown finds %s, reading rows %s", pushed.Tables[i].Table, a, b)
		}
	}
	found := map[string]bool{}
	for _, tb := range pushed.Tables {
		for _, d := range tb.Diffs {
			found[d.Kind+" "+d.Key+" "+strings.Join(d.Columns, ",")] = true
		}
	}
	for _, want := range []string{"missing id=17 ", "different id=4242 amount,note", "extra id=999999 ", "different order_id=3, line=2 qty",
		"missing at=3, what=w3 ", "missing at=499, what=w2 ", "extra at=499, what=changed "} {
		if !found[want] {
			t.Errorf("pushdown verify lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestMySQLVerifyPushdown: MariaDB on both sides hashes its rows itself, and
// finds the same keys and columns as reading the rows.
func TestMySQLVerifyPushdown(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	src, dst := mysqlDatabase(t, s, "pd_src"), mysqlDatabase(t, s, "pd_dst")
	createShop(t, s, src, 5000)
	mustFerry(t, "sync", s.URL(src), s.URL(dst), "--mode", "snapshot", "--state-dir", t.TempDir())

	pushed, r := verifyJSON(t, 0, s.URL(src), s.URL(dst))
	rowed, _ := verifyJSON(t, 0, s.URL(src), s.URL(dst), "--no-pushdown")
	for i, tb := range pushed.Tables {
		through := rowed.Tables[i]
		if !tb.Pushdown || tb.BytesRead*20 > through.BytesRead {
			t.Fatalf("%s: pushdown %v read %d bytes, through ferry %d\n%s", tb.Table, tb.Pushdown, tb.BytesRead, through.BytesRead, r)
		}
	}
	s.Exec(t, "DELETE FROM `"+dst+"`.orders WHERE id = 17", "UPDATE `"+dst+"`.orders SET ratio = 0, updated = NOW() WHERE id = 4242",
		"UPDATE `"+dst+"`.items SET qty = 99 WHERE order_id = 3 AND line = 2")
	pushed, r = verifyJSON(t, 1, s.URL(src), s.URL(dst))
	rowed, _ = verifyJSON(t, 1, s.URL(src), s.URL(dst), "--no-pushdown")
	found := map[string]bool{}
	for i, tb := range pushed.Tables {
		a, _ := json.Marshal(tb.Diffs)
		b, _ := json.Marshal(rowed.Tables[i].Diffs)
		if string(a) != string(b) {
			t.Errorf("%s: pushdown finds %s, reading rows %s", tb.Table, a, b)
		}
		for _, d := range tb.Diffs {
			found[d.Kind+" "+d.Key+" "+strings.Join(d.Columns, ",")] = true
		}
	}
	for _, want := range []string{"missing id=17 ", "different id=4242 ratio,updated", "different order_id=3, line=2 qty"} {
		if !found[want] {
			t.Errorf("pushdown verify lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestPostgresPushdownSeesEveryKindOfDifference: pushdown hashes most
// columns by their type's own hash, not their text. Each change below is a
// difference a user would call one (the text differs), and some are equal
// under their type's hash (1.0 and 1.00, -0 and 0, '1 day' and '24
// hours', an enum's label by OID, text differing only in case under a
// case-insensitive comparison): each must be found, and an equal copy of
// every type must be equal.
func TestPostgresPushdownSeesEveryKindOfDifference(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "pkindsrc"), srv.CreateDatabase(t, "pkinddst")
	srv.Exec(t, src, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE TABLE kinds (id int PRIMARY KEY, b bool, i2 smallint, i8 bigint, n numeric, n2 numeric(12,2),
			f4 real, f8 float8, t text, v varchar(20), c char(5), by bytea, j json, jb jsonb, u uuid, d date,
			tm time, ts timestamp, tz timestamptz, iv interval, e mood, a int[], ip inet, mac macaddr);
		INSERT INTO kinds SELECT g, g % 2 = 0, g, g * 1000, 1.0 * g, g + 0.25, g / 4.0, g / 8.0, 'Text ' || g, 'v' || g, 'c', '\x00ff'::bytea,
			'{"a": 1}', '{"b": [1, 2]}', md5(g::text)::uuid, date '2026-01-01' + g, time '10:00' + g * interval '1 minute',
			timestamp '2026-01-01 00:00' + g * interval '1 hour', timestamptz '2026-01-01 00:00+00' + g * interval '1 hour',
			interval '1 day', 'ok', ARRAY[g, g + 1], '10.0.0.1', '08:00:2b:01:02:03'
		FROM generate_series(1, 40) g`)
	mustFerry(t, "sync", srv.URL(src), srv.URL(dst), "--mode", "snapshot", "--state-dir", t.TempDir())
	if v, r := verifyJSON(t, 0, srv.URL(src), srv.URL(dst)); !v.Equal || !v.Tables[0].Pushdown {
		t.Fatalf("pushdown verify of an equal copy of every type: %s", r)
	}
	changes := map[int]string{
		1: "n = 1.00", 2: "f8 = '-0'", 3: "iv = interval '24 hours'", 4: "e = 'happy'", 5: "t = 'text 5'",
		6: "jb = '{\"b\": [2, 1]}'", 7: "j = '{\"a\":1}'", 8: "c = 'C'", 9: "tz = tz + interval '1 microsecond'",
		10: "a = ARRAY[10, 12]", 11: "n2 = n2 + 0.01", 12: "ip = '10.0.0.1/24'", 13: "by = '\\x00fe'",
		14: "b = NULL", 15: "f4 = f4 + 0.5",
	}
	for id, set := range changes {
		srv.Exec(t, dst, "UPDATE kinds SET "+set+" WHERE id = "+strconv.Itoa(id))
	}
	v, r := verifyJSON(t, 1, srv.URL(src), srv.URL(dst))
	if !v.Tables[0].Pushdown {
		t.Fatalf("not verified by pushdown: %s", r)
	}
	found := map[string]bool{}
	for _, d := range v.Tables[0].Diffs {
		found[d.Key] = true
	}
	for id, set := range changes {
		if !found["id="+strconv.Itoa(id)] {
			t.Errorf("pushdown verify missed %s at id %d: %s", set, id, r)
		}
	}
	if len(v.Tables[0].Diffs) != len(changes) {
		t.Errorf("%d differences, want %d: %s", len(v.Tables[0].Diffs), len(changes), r)
	}
}
