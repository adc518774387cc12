package transform

import (
	"reflect"
	"testing"

	"github.com/ferrydb/ferry/model"
)

var (
	usersNS  = model.Namespace{Schema: "shop", Table: "users"}
	eventsNS = model.Namespace{Schema: "shop", Table: "events"}
)

func withActive(r model.Row, active bool) model.Row { r[3] = active; return r }

// TestChangeKeyedFilter: the old row of a keyed table is unknown, so an
// update leaving the filter deletes by key, and deletes always pass.
func TestChangeKeyedFilter(t *testing.T) {
	x := bind(t, Spec{Filter: []string{"users: active == true"}, Mask: []string{"users.id=hash", "users.email=last3"}, Exclude: []string{"users.born"}}, users())
	out := func(r model.Row) model.Row {
		row, ok, err := x.Row(r)
		if err != nil || !ok {
			t.Fatalf("Row(%v): %v %v", r, ok, err)
		}
		return row
	}
	hashedKey := func(id string) model.Row { return model.Row{hmacHex(id)} }
	in, gone := alice(), withActive(alice(), false)
	cases := []struct {
		name string
		in   model.Change
		want *model.Change // nil: dropped
	}{
		{"insert passing", model.Change{Op: model.OpInsert, Table: usersNS, Row: in},
			&model.Change{Op: model.OpInsert, Table: usersNS, Row: out(in)}},
		{"insert failing", model.Change{Op: model.OpInsert, Table: usersNS, Row: gone}, nil},
		{"update passing", model.Change{Op: model.OpUpdate, Table: usersNS, Row: in},
			&model.Change{Op: model.OpUpdate, Table: usersNS, Row: out(in)}},
		{"update passing, key changed", model.Change{Op: model.OpUpdate, Table: usersNS, Row: in, Key: model.Row{int64(3)}},
			&model.Change{Op: model.OpUpdate, Table: usersNS, Row: out(in), Key: hashedKey("3")}},
		{"update failing: delete by the new row's key", model.Change{Op: model.OpUpdate, Table: usersNS, Row: gone},
			&model.Change{Op: model.OpDelete, Table: usersNS, Key: hashedKey("7")}},
		{"update failing, key changed: delete the old key", model.Change{Op: model.OpUpdate, Table: usersNS, Row: gone, Key: model.Row{int64(3)}},
			&model.Change{Op: model.OpDelete, Table: usersNS, Key: hashedKey("3")}},
		{"delete kept", model.Change{Op: model.OpDelete, Table: usersNS, Key: model.Row{int64(7)}},
			&model.Change{Op: model.OpDelete, Table: usersNS, Key: hashedKey("7")}},
		{"truncate", model.Change{Op: model.OpTruncate, Table: usersNS}, &model.Change{Op: model.OpTruncate, Table: usersNS}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok, err := x.Change(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (c.want != nil) {
				t.Fatalf("kept %v, want %v (%+v)", ok, c.want != nil, got)
			}
			if ok && !reflect.DeepEqual(got, *c.want) {
				t.Errorf("change\n%+v\nwant\n%+v", got, *c.want)
			}
		})
	}
	if !reflect.DeepEqual(in, alice()) || !reflect.DeepEqual(gone, withActive(alice(), false)) {
		t.Error("Change modified its input rows")
	}
}

// TestChangeKeyNotMasked: a key no mask touches is passed as it is.
func TestChangeKeyNotMasked(t *testing.T) {
	x := bind(t, Spec{Rename: []string{"users.id=uid"}, Mask: []string{"users.email=hash"}}, users())
	key := model.Row{int64(3)}
	got, ok, err := x.Change(model.Change{Op: model.OpDelete, Table: usersNS, Key: key})
	if err != nil || !ok || &got.Key[0] != &key[0] {
		t.Errorf("delete: %+v %v %v; want the key itself", got, ok, err)
	}
	got, ok, err = x.Change(model.Change{Op: model.OpUpdate, Table: usersNS, Row: alice(), Key: key})
	if err != nil || !ok || got.Op != model.OpUpdate || got.Row[1] != hmacHex("alice@example.com") || &got.Key[0] != &key[0] {
		t.Errorf("update: %+v %v %v", got, ok, err)
	}
}

// TestChangeFullRowFilter: a table without a key whose changes carry the
// old row is filtered on both rows.
func TestChangeFullRowFilter(t *testing.T) {
	x := bind(t, Spec{Filter: []string{"events: amount > 10"}, Compute: []string{"events.big = amount > 100"}}, events())
	small, big, large := model.Row{"click", int64(5)}, model.Row{"click", int64(50)}, model.Row{"buy", int64(500)}
	o := func(r model.Row) model.Row { return append(r[:len(r):len(r)], r[1].(int64) > 100) }
	cases := []struct {
		name string
		in   model.Change
		want *model.Change
	}{
		{"update old and new pass", model.Change{Op: model.OpUpdate, Table: eventsNS, Key: big, Row: large},
			&model.Change{Op: model.OpUpdate, Table: eventsNS, Key: o(big), Row: o(large)}},
		{"update old passes, new fails: delete", model.Change{Op: model.OpUpdate, Table: eventsNS, Key: big, Row: small},
			&model.Change{Op: model.OpDelete, Table: eventsNS, Key: o(big)}},
		{"update old fails, new passes: insert", model.Change{Op: model.OpUpdate, Table: eventsNS, Key: small, Row: large},
			&model.Change{Op: model.OpInsert, Table: eventsNS, Row: o(large)}},
		{"update both fail", model.Change{Op: model.OpUpdate, Table: eventsNS, Key: small, Row: model.Row{"x", int64(1)}}, nil},
		{"delete passing", model.Change{Op: model.OpDelete, Table: eventsNS, Key: big},
			&model.Change{Op: model.OpDelete, Table: eventsNS, Key: o(big)}},
		{"delete failing", model.Change{Op: model.OpDelete, Table: eventsNS, Key: small}, nil},
		{"insert passing", model.Change{Op: model.OpInsert, Table: eventsNS, Row: big},
			&model.Change{Op: model.OpInsert, Table: eventsNS, Row: o(big)}},
		{"insert failing", model.Change{Op: model.OpInsert, Table: eventsNS, Row: small}, nil},
		{"truncate", model.Change{Op: model.OpTruncate, Table: eventsNS}, &model.Change{Op: model.OpTruncate, Table: eventsNS}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok, err := x.Change(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (c.want != nil) {
				t.Fatalf("kept %v, want %v (%+v)", ok, c.want != nil, got)
			}
			if ok && !reflect.DeepEqual(got, *c.want) {
				t.Errorf("change\n%+v\nwant\n%+v", got, *c.want)
			}
		})
	}
}

// TestChangeFullRowMasks: the old row in Key is transformed like the new.
func TestChangeFullRowMasks(t *testing.T) {
	x := bind(t, Spec{Mask: []string{"events.kind=last2"}}, events())
	got, ok, err := x.Change(model.Change{Op: model.OpUpdate, Table: eventsNS, Key: model.Row{"click", int64(1)}, Row: model.Row{"click", int64(2)}})
	want := model.Change{Op: model.OpUpdate, Table: eventsNS, Key: model.Row{"***ck", int64(1)}, Row: model.Row{"***ck", int64(2)}}
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("Change = %+v, %v, %v; want %+v", got, ok, err, want)
	}
}

// TestSentUnchanged: what the source may send as unchanged cannot be read
// by an expression, nor be on a filtered table; masks keep the marker.
func TestSentUnchanged(t *testing.T) {
	toasted := func() *model.Table {
		u := users()
		u.Columns[2].SentUnchanged = true // name
		return u
	}
	fix := "ALTER TABLE shop.users REPLICA IDENTITY FULL"
	refused(t, Spec{Compute: []string{"users.n = name + '!'"}}, toasted(), `computed column n "name + '!'" reads column name`, "unchanged", fix)
	refused(t, Spec{Filter: []string{"users: name == 'x'"}}, toasted(), `filter "name == 'x'" reads column name`, fix)
	// A filter not reading it is refused too: a row moving in would be
	// inserted without the value.
	refused(t, Spec{Filter: []string{"users: active == true"}}, toasted(), "may send name as unchanged", "moving a row into the filter", fix)

	x := bind(t, Spec{Mask: []string{"users.name=hash"}, Exclude: []string{"users.email"}, Compute: []string{"users.d = id * 2"}}, toasted())
	in := alice()
	in[1], in[2] = model.Unchanged, model.Unchanged
	got, ok, err := x.Change(model.Change{Op: model.OpUpdate, Table: usersNS, Row: in})
	want := model.Row{int64(7), model.Unchanged, true, "12.50", day(1990, 5, 17), int64(14)}
	if err != nil || !ok || !reflect.DeepEqual(got.Row, want) {
		t.Errorf("update with Unchanged: %+v %v %v; want row %v", got, ok, err, want)
	}
	for _, m := range []string{"redact", "last2"} {
		x := bind(t, Spec{Mask: []string{"users.name=" + m}}, toasted())
		got, _, err := x.Change(model.Change{Op: model.OpUpdate, Table: usersNS, Row: in})
		if err != nil || !model.IsUnchanged(got.Row[2]) {
			t.Errorf("mask %s of Unchanged = %v, %v", m, got.Row[2], err)
		}
	}
}

func TestChangeShapeErrors(t *testing.T) {
	x := bind(t, Spec{Mask: []string{"users.id=hash"}}, users())
	if _, _, err := x.Change(model.Change{Op: model.OpInsert, Table: usersNS, Row: model.Row{int64(1)}}); err == nil {
		t.Error("a short inserted row passed")
	}
	if _, _, err := x.Change(model.Change{Op: model.OpDelete, Table: usersNS, Key: model.Row{int64(1), int64(2)}}); err == nil {
		t.Error("a key of two values for one key column passed")
	}
}

func BenchmarkChangeUpdate(b *testing.B) {
	r, _ := Parse(Spec{Mask: []string{"users.id=hash", "users.email=hash"}, Filter: []string{"users: active == true"}, Salt: salt})
	x, err := r.For(users())
	if err != nil {
		b.Fatal(err)
	}
	c := model.Change{Op: model.OpUpdate, Table: usersNS, Row: alice()}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := x.Change(c); err != nil {
			b.Fatal(err)
		}
	}
}
