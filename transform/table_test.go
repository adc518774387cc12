package transform

import (
	"reflect"
	"sync"
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestForNoMatch(t *testing.T) {
	r, err := Parse(Spec{Exclude: []string{"orders.note"}, Filter: []string{"orders: true"}})
	if err != nil {
		t.Fatal(err)
	}
	if x, err := r.For(users()); x != nil || err != nil {
		t.Errorf("For(users) = %v, %v; want nil, nil", x, err)
	}
}

// TestOutput checks the destination's shape: columns gone, renamed,
// masked and computed, with the key and indexes following.
func TestOutput(t *testing.T) {
	src := users()
	src.Sequences = []model.SequenceDef{{Name: model.Namespace{Schema: "shop", Table: "users_id_seq"}, OwnedBy: "id"}}
	src.Extensions = []model.Extension{{Name: "citext", Columns: []string{"email", "name"}}}
	x := bind(t, Spec{
		Exclude: []string{"users.born"},
		Rename:  []string{"users.id=user_id", "users.name=full name", "users.active=enabled"},
		Mask:    []string{"users.email=hash", "users.balance=redact"},
		Compute: []string{"users.domain = email.split('@')[1]"},
	}, src)
	out := x.Output()
	if out.Namespace != src.Namespace {
		t.Errorf("namespace %s, want the source's %s", out.Namespace, src.Namespace)
	}
	if got, want := names(out), []string{"user_id", "email", "full name", "enabled", "balance", "domain"}; !equal(got, want) {
		t.Fatalf("columns %v, want %v", got, want)
	}
	want := []model.Column{
		// Renamed only: keeps its type and definitions.
		{Name: "user_id", Type: model.Type{Kind: model.KindInt64, Native: "bigint"}, Identity: &model.Identity{Always: true}},
		// Hashed: text, without the source's varchar(50) and collation.
		{Name: "email", Type: model.Type{Kind: model.KindText}, Nullable: true},
		{Name: "full name", Type: model.Type{Kind: model.KindText}, Nullable: true},
		{Name: "enabled", Type: model.Type{Kind: model.KindBool}, Nullable: true, Default: "true"},
		// Redacted decimal: NULL, keeps its kind, loses its native type.
		{Name: "balance", Type: model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}, Nullable: true},
		{Name: "domain", Type: model.Type{Kind: model.KindText}, Nullable: true},
	}
	for i := range want {
		if !reflect.DeepEqual(out.Columns[i], want[i]) {
			t.Errorf("column %d = %+v, want %+v", i, out.Columns[i], want[i])
		}
	}
	if !equal(out.PrimaryKey, []string{"user_id"}) {
		t.Errorf("primary key %v, want [user_id]", out.PrimaryKey)
	}
	// users_email (a masked column) and users_lower_email (an expression
	// over it) go; the others follow the renames, their definitions too.
	wantIx := []model.Index{
		{Name: "users_name", Columns: []string{"full name"}, Native: `btree ("full name") WHERE (enabled IS TRUE)`},
		{Name: "users_active_name", Columns: []string{"enabled", "full name"}, Native: `btree (enabled, "full name")`},
	}
	if !reflect.DeepEqual(out.Indexes, wantIx) {
		t.Errorf("indexes %+v, want %+v", out.Indexes, wantIx)
	}
	if out.Sequences[0].OwnedBy != "user_id" {
		t.Errorf("sequence owned by %q, want user_id", out.Sequences[0].OwnedBy)
	}
	if !equal(out.Extensions[0].Columns, []string{"full name"}) {
		t.Errorf("extension columns %v, want [full name]", out.Extensions[0].Columns)
	}
	// The source table is left alone.
	if !reflect.DeepEqual(src.Columns[1].Type, model.Type{Kind: model.KindText, Native: "character varying(50)", Length: 50}) || len(src.Indexes) != 4 {
		t.Errorf("For changed the source table: %+v", src)
	}
}

func TestOutputMaskedTypes(t *testing.T) {
	src := &model.Table{
		Namespace: model.Namespace{Table: "t"},
		Columns: []model.Column{
			{Name: "code", Type: model.Type{Kind: model.KindText, Length: 4, Native: "varchar(4)", TextForm: true}, Collation: "C"},
			{Name: "n", Type: model.Type{Kind: model.KindInt32}},
			{Name: "u", Type: model.Type{Kind: model.KindUUID}},
			{Name: "s", Type: model.Type{Kind: model.KindText}, Default: "'x'"},
		},
	}
	x := bind(t, Spec{Mask: []string{"t.code=redact", "t.n=last2", "t.u=redact", "t.s=hash"}}, src)
	want := []model.Column{
		{Name: "code", Type: model.Type{Kind: model.KindText}},
		{Name: "n", Type: model.Type{Kind: model.KindText}},
		{Name: "u", Type: model.Type{Kind: model.KindUUID}, Nullable: true},
		{Name: "s", Type: model.Type{Kind: model.KindText}},
	}
	if !reflect.DeepEqual(x.Output().Columns, want) {
		t.Errorf("columns %+v, want %+v", x.Output().Columns, want)
	}
	row, ok, err := x.Row(model.Row{"abcd", int64(1234), "0b9c1e8a-1d4f-4c5e-9f7a-2b3c4d5e6f70", "x"})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if want := (model.Row{"[redacted]", "**34", nil, hmacHex("x")}); !reflect.DeepEqual(row, want) {
		t.Errorf("row %v, want %v", row, want)
	}
}

func TestOutputPartitioning(t *testing.T) {
	src := users()
	src.Partitioning = &model.Partitioning{Key: "RANGE (born)", Partitions: []model.TablePartition{{Name: model.Namespace{Table: "users_1990"}, Bound: "FOR VALUES FROM ('1990-01-01') TO ('2000-01-01')",
		Indexes: []model.Index{{Name: "p_name", Columns: []string{"name"}}, {Name: "p_email", Columns: []string{"email"}}}}}}
	src.PrimaryKeyPartitions = []model.PartitionIndex{{Partition: model.Namespace{Table: "users_1990"}, Name: "users_1990_pkey"}}
	x := bind(t, Spec{Rename: []string{"users.born=birthday", "users.name=full_name"}, Mask: []string{"users.email=hash"}}, src)
	p := x.Output().Partitioning
	if p == nil || p.Key != "RANGE (birthday)" {
		t.Fatalf("partitioning %+v, want RANGE (birthday)", p)
	}
	if ix := p.Partitions[0].Indexes; len(ix) != 1 || ix[0].Columns[0] != "full_name" {
		t.Errorf("partition indexes %+v, want p_name on full_name alone", ix)
	}
	// Partitioned by a masked column: its bounds cannot hold hashes.
	x = bind(t, Spec{Mask: []string{"users.born=last2"}}, src)
	if out := x.Output(); out.Partitioning != nil || out.PrimaryKeyPartitions != nil {
		t.Errorf("partitioned by a masked column: %+v", out.Partitioning)
	}
}

func TestGeneratedColumnReadingAGoneColumn(t *testing.T) {
	src := &model.Table{Namespace: model.Namespace{Table: "t"}, Columns: []model.Column{
		{Name: "a", Type: model.Type{Kind: model.KindInt64}},
		{Name: "b", Type: model.Type{Kind: model.KindInt64}, Generated: true, Expression: "(a * 2)"},
		{Name: "c", Type: model.Type{Kind: model.KindInt64}},
		{Name: "d", Type: model.Type{Kind: model.KindInt64}, Generated: true, Expression: "(c + 1)"},
	}}
	x := bind(t, Spec{Exclude: []string{"t.a"}, Rename: []string{"t.c=cc"}}, src)
	cols := x.Output().Columns
	if cols[0].Generated || cols[0].Expression != "" {
		t.Errorf("b reads the excluded a, yet stays generated: %+v", cols[0])
	}
	if !cols[2].Generated || cols[2].Expression != "(cc + 1)" {
		t.Errorf("d = %+v, want generated as (cc + 1)", cols[2])
	}
}

// TestKeyRules: a key column may be renamed or hashed, nothing else.
func TestKeyRules(t *testing.T) {
	refused(t, Spec{Exclude: []string{"users.id"}}, users(), "table shop.users", `exclude "users.id"`, "primary key column id", "mask it with hash")
	refused(t, Spec{Mask: []string{"users.id=redact"}}, users(), "table shop.users", "primary key column id with redact", "merge", "mask a key column with hash")
	refused(t, Spec{Mask: []string{"users.id=last2"}}, users(), "primary key column id with last2")
	bind(t, Spec{Mask: []string{"users.id=hash"}, Rename: []string{"users.id=uid"}}, users())
	// A table without a primary key has no key column to protect.
	x := bind(t, Spec{Mask: []string{"events.kind=redact", "events.amount=last1"}}, events())
	row, ok, err := x.Row(model.Row{"click", int64(25)})
	if err != nil || !ok || !reflect.DeepEqual(row, model.Row{"[redacted]", "*5"}) {
		t.Errorf("Row = %v, %v, %v", row, ok, err)
	}
}

func TestConflicts(t *testing.T) {
	refused(t, Spec{Exclude: []string{"users.name"}, Mask: []string{"*.name=redact"}}, users(), `exclude "users.name" excludes column name, which mask "*.name=redact" masks`)
	refused(t, Spec{Exclude: []string{"users.name"}, Rename: []string{"users.name=n"}}, users(), "which rename")
	refused(t, Spec{Rename: []string{"users.name=a", "shop.users.name=b"}}, users(), "two names")
	refused(t, Spec{Mask: []string{"users.name=redact", "shop.users.name=hash"}}, users(), "two ways")
	refused(t, Spec{Rename: []string{"users.name=email"}}, users(), "columns email and name would both be called email")
	refused(t, Spec{Compute: []string{"users.email = 'x'"}}, users(), "adds column email, the name column email has at the destination")
	refused(t, Spec{Compute: []string{"users.x = 1", "shop.*.x = 2"}}, users(), "another computed column")
	// A column freed by a rename or an exclude may be taken.
	bind(t, Spec{Rename: []string{"users.name=full_name", "users.email=name"}, Exclude: []string{"users.born"}, Compute: []string{"users.born = 1"}}, users())
	// The same rule twice through two globs is no conflict.
	bind(t, Spec{Mask: []string{"users.name=redact", "shop.users.name=redact"}}, users())
}

func TestDescribe(t *testing.T) {
	x := bind(t, Spec{
		Exclude: []string{"users.born"},
		Rename:  []string{"users.name=full_name"},
		Mask:    []string{"users.email=hash", "users.name=last4"},
		Compute: []string{"users.domain = email.split('@')[1]"},
		Filter:  []string{"users: active == true"},
	}, users())
	want := []string{
		"email: masked (hash)",
		"name: renamed to full_name, masked (last4)",
		"born: excluded",
		"domain: computed (text) = email.split('@')[1]",
		"filter: active == true",
	}
	if got := x.Describe(); !equal(got, want) {
		t.Errorf("Describe =\n%q\nwant\n%q", got, want)
	}
	if !x.HasFilter() {
		t.Error("HasFilter false with a filter")
	}
	if bind(t, Spec{Exclude: []string{"users.born"}}, users()).HasFilter() {
		t.Error("HasFilter true without a filter")
	}
}

func TestRowAndShape(t *testing.T) {
	x := bind(t, Spec{Exclude: []string{"users.born"}, Rename: []string{"users.name=n"}, Mask: []string{"users.email=hash"}}, users())
	in := alice()
	row, ok, err := x.Row(in)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	want := model.Row{int64(7), hmacHex("alice@example.com"), "Alice", true, "12.50"}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("row %v, want %v", row, want)
	}
	if !reflect.DeepEqual(in, alice()) {
		t.Errorf("Row changed its input: %v", in)
	}
	if _, _, err := x.Row(in[:3]); err == nil || !contains(err.Error(), "table shop.users: the row has 3 values, the table 6 columns") {
		t.Errorf("a short row: %v", err)
	}
}

func BenchmarkRow(b *testing.B) {
	r, _ := Parse(Spec{Exclude: []string{"users.born"}, Rename: []string{"users.name=n"}, Mask: []string{"users.email=hash"}, Filter: []string{"users: active == true && balance > 1.0"}, Salt: salt})
	x, err := r.For(users())
	if err != nil {
		b.Fatal(err)
	}
	in := alice()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := x.Row(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRowAllocations: a row without expressions costs one allocation, the
// output row, and two per hashed value (its text, and that text in an any).
func TestRowAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector empties sync.Pools")
	}
	x := bind(t, Spec{Exclude: []string{"users.born"}, Rename: []string{"users.name=n"}}, users())
	in := alice()
	if n := testing.AllocsPerRun(100, func() { x.Row(in) }); n != 1 {
		t.Errorf("Row allocates %v times, want 1 (the row)", n)
	}
	x = bind(t, Spec{Exclude: []string{"users.born"}, Mask: []string{"users.email=hash"}}, users())
	if n := testing.AllocsPerRun(100, func() { x.Row(in) }); n != 3 {
		t.Errorf("Row with a hash allocates %v times, want 3", n)
	}
}

// TestConcurrentRows: the copy's workers share one *Table.
func TestConcurrentRows(t *testing.T) {
	x := bind(t, Spec{Mask: []string{"users.email=hash"}, Filter: []string{"users: active == true"}, Compute: []string{"users.d = email.split('@')[1]"}}, users())
	want, _, err := x.Row(alice())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				got, ok, err := x.Row(alice())
				if err != nil || !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("Row = %v, %v, %v; want %v", got, ok, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
