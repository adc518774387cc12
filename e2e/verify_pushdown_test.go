package e2e

import (
	"encoding/json"
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
	mustFerry(t, "sync", srv.URL(src), srv.URL(dst), "--mode", "snapshot", "--state-dir", t.TempDir())

	pushed, r := verifyJSON(t, 0, srv.URL(src), srv.URL(dst))
	rowed, _ := verifyJSON(t, 0, srv.URL(src), srv.URL(dst), "--no-pushdown")
	if !pushed.Equal || len(pushed.Tables) != 2 {
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
		INSERT INTO orders (id, customer) VALUES (999999, 1); UPDATE lines SET qty = 9 WHERE order_id = 3 AND line = 2`)
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
	for _, want := range []string{"missing id=17 ", "different id=4242 amount,note", "extra id=999999 ", "different order_id=3, line=2 qty"} {
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
