package mysql

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// flowStart creates db's tables with ddl and returns a source, its tables
// and the CDC start position.
func flowStart(t *testing.T, s *mysqltest.Server, db string, ddl ...string) (*Conn, []*model.Table, model.Position) {
	t.Helper()
	for _, q := range ddl {
		s.Exec(t, "USE `"+db+"`; "+q)
	}
	src := openConn(t, s.URL(db))
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{CDC: true})
	if err != nil {
		t.Fatal(err)
	}
	return src, tables, plan.T0
}

func head(t *testing.T, src *Conn) model.Position {
	t.Helper()
	p, err := src.HeadPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func columnNames(tb *model.Table) string {
	var out []string
	for _, c := range tb.Columns {
		out = append(out, c.Name+" "+c.Type.Native)
	}
	return strings.Join(out, ", ")
}

// event is a batch's schema change or change, in stream order, written so
// a test compares the whole stream at once.
func events(t *testing.T, batches []*model.ChangeBatch, tables []*model.Table) []string {
	t.Helper()
	defs := map[model.Namespace]*model.Table{}
	for _, tb := range tables {
		defs[tb.Namespace] = tb
	}
	var out []string
	for _, b := range batches {
		for _, sc := range b.Schemas {
			e := fmt.Sprintf("schema %s (%s) key %v", sc.Table.Namespace.Table, columnNames(sc.Table), sc.Table.PrimaryKey)
			if sc.Created {
				e += " created"
			}
			if sc.Dropped {
				e += " dropped"
			}
			if len(sc.Renamed) > 0 {
				e += fmt.Sprintf(" renamed %v", sc.Renamed)
			}
			if len(sc.Filled) > 0 {
				var f []string
				for _, c := range sc.Table.Columns {
					if v, ok := sc.Filled[c.Name]; ok {
						txt, err := model.FormatText(c.Type, v)
						if err != nil {
							t.Fatalf("filled %s: %v", c.Name, err)
						}
						f = append(f, fmt.Sprintf("%s=%q", c.Name, txt))
					}
				}
				e += " filled " + strings.Join(f, " ")
			}
			out = append(out, e)
			defs[sc.Table.Namespace] = sc.Table
		}
		for _, c := range b.Changes {
			tb := defs[c.Table]
			e := c.Op.String() + " " + c.Table.Table
			if c.Row != nil {
				var vals []string
				for i, v := range c.Row {
					if v == nil {
						vals = append(vals, "NULL")
						continue
					}
					txt, err := model.FormatText(tb.Columns[i].Type, v)
					if err != nil {
						t.Fatalf("%s column %s: %v", e, tb.Columns[i].Name, err)
					}
					vals = append(vals, txt)
				}
				e += " (" + strings.Join(vals, ", ") + ")"
			}
			out = append(out, e)
		}
	}
	return out
}

func sameEvents(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n got:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestCDCFollowsAlterTable(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "alter")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY, a varchar(10), b int)", "INSERT INTO t VALUES (1, 'x', 10)")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"INSERT INTO t VALUES (2, 'y', 20)",
		// Constant defaults and a NOT NULL column's implicit default are
		// what every existing row got; a column placed FIRST moves the rest.
		use+"ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 7, ADD COLUMN d varchar(5) NOT NULL, ADD COLUMN e varchar(5) NULL FIRST, ADD f decimal(6,2) DEFAULT '1.5', ADD INDEX (b)",
		use+"INSERT INTO t (e, id, a, b, c, d) VALUES ('E', 3, 'z', 30, 8, 'dd')",
		use+"ALTER TABLE t RENAME COLUMN a TO a2, DROP COLUMN b",
		use+"UPDATE t SET a2 = 'y2' WHERE id = 2",
		use+"ALTER TABLE t CHANGE a2 name varchar(40) NOT NULL DEFAULT '' AFTER f, MODIFY c bigint NOT NULL",
		use+"INSERT INTO t VALUES (NULL, 4, 5000000000, 'q', 2.25, 'n')",
		use+"ALTER TABLE t DROP COLUMN f, ALTER COLUMN c SET DEFAULT 9",
		use+"DELETE FROM t WHERE id = 1",
	)
	end := head(t, src)
	batches, err := streamUntil(t, src, tables, t0, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The stream reads each ALTER after all of them ran: the server already
	// has c as bigint, so c's first definition comes from the statement
	// (int), the others' from the server (int(11)).
	want := []string{
		"insert t (2, y, 20)",
		"schema t (e varchar(5), id int(11), a varchar(10), b int(11), c int, d varchar(5), f decimal(6,2)) key [id] filled c=\"7\" d=\"\" f=\"1.50\"",
		"insert t (E, 3, z, 30, 8, dd, 1.50)",
		"schema t (e varchar(5), id int(11), a2 varchar(10), c int, d varchar(5), f decimal(6,2)) key [id] renamed map[a2:a]",
		"update t (NULL, 2, y2, 7, , 1.50)",
		"schema t (e varchar(5), id int(11), c bigint(20), d varchar(5), f decimal(6,2), name varchar(40)) key [id] renamed map[name:a2]",
		"insert t (NULL, 4, 5000000000, q, 2.25, n)",
		"schema t (e varchar(5), id int(11), c bigint(20), d varchar(5), name varchar(40)) key [id]",
		"delete t",
	}
	sameEvents(t, "the stream of an altered table", events(t, batches, tables), want)
	// Each ALTER is one batch, with its schema change before anything else.
	for _, b := range batches {
		if len(b.Schemas) > 1 || len(b.Schemas) == 1 && len(b.Changes) > 0 {
			t.Fatalf("an ALTER's batch: %d schema changes and %d changes", len(b.Schemas), len(b.Changes))
		}
	}
	changes := changesOf(batches)
	if d := changes[len(changes)-1]; d.Op != model.OpDelete || len(d.Key) != 1 || d.Key[0] != int64(1) {
		t.Fatalf("the delete after the ALTERs: %+v", d)
	}

	// Resumed after the first ALTER with the definition it emitted (as a
	// flow's state hands it back), the stream emits the same later changes,
	// relative to that definition.
	var afterFirst model.Position
	var firstDef *model.Table
	for _, b := range batches {
		if len(b.Schemas) > 0 {
			afterFirst, firstDef = b.Position, b.Schemas[0].Table
			break
		}
	}
	again, err := streamUntil(t, src, []*model.Table{firstDef}, afterFirst, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "resumed after the first ALTER", events(t, again, []*model.Table{firstDef}), want[2:])
}

func TestCDCFollowsRenameColumnOnMariaDB(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "rencol")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id bigint PRIMARY KEY, `Old Name` varchar(10), KEY k (`Old Name`))")
	if !versionAtLeast(src.server.version, 10, 5) {
		t.Skipf("MariaDB %s has no RENAME COLUMN (10.5 and later)", src.server.version)
	}
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"INSERT INTO t VALUES (1, 'a')",
		use+"ALTER TABLE t RENAME COLUMN `Old Name` TO `new``name`",
		use+"INSERT INTO t VALUES (2, 'b')",
		// MariaDB 10.5 and later: IF EXISTS skips what does not apply.
		use+"ALTER TABLE t RENAME COLUMN IF EXISTS `nope` TO `x`, DROP COLUMN IF EXISTS `nope`, ADD COLUMN IF NOT EXISTS `id` int",
		// A rename to the same name in another case is a rename.
		use+"ALTER TABLE t CHANGE COLUMN `new``name` `NEW``NAME` varchar(10)",
	)
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "renamed columns", events(t, batches, tables), []string{
		"insert t (1, a)",
		"schema t (id bigint(20), new`name varchar(10)) key [id] renamed map[new`name:Old Name]",
		"insert t (2, b)",
		"schema t (id bigint(20), NEW`NAME varchar(10)) key [id] renamed map[NEW`NAME:new`name]",
	})
	// The index on the column follows it.
	last := batches[len(batches)-1].Schemas[0].Table
	if len(last.Indexes) != 1 || fmt.Sprint(last.Indexes[0].Columns) != "[NEW`NAME]" {
		t.Fatalf("indexes after the renames: %+v", last.Indexes)
	}
}

func TestCDCTruncateInStreamOrder(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "trunc")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)", "CREATE TABLE other (id int PRIMARY KEY)")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"INSERT INTO t VALUES (1), (2)",
		use+"TRUNCATE TABLE t",
		use+"TRUNCATE other",
		use+"INSERT INTO t VALUES (3)",
	)
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "insert, truncate, insert", events(t, batches, tables), []string{
		"insert t (1)", "insert t (2)", "truncate t", "truncate other", "insert t (3)",
	})
	for _, b := range batches {
		for _, c := range b.Changes {
			if c.Op == model.OpTruncate && (len(b.Changes) != 1 || c.Table.Schema != db || c.Row != nil || c.Key != nil) {
				t.Fatalf("a truncate is its own batch on its table alone: %+v", b.Changes)
			}
		}
	}
}

func TestCDCStopsOnValuesTheBinlogDoesNotCarry(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "vals")
	use := "USE `" + db + "`; "
	cases := []struct {
		name  string
		alter string
		want  []string
	}{
		{"generated", "ALTER TABLE %s ADD COLUMN g int AS (id * 2) STORED",
			[]string{"column g is generated", "ferry sync --restart"}},
		{"partition", "ALTER TABLE %s PARTITION BY HASH (id) PARTITIONS 2",
			[]string{"ferry does not follow partitioning changes", "PARTITION BY HASH", "ferry sync --restart"}},
		{"primary key", "ALTER TABLE %s DROP PRIMARY KEY, ADD PRIMARY KEY (id, v)",
			[]string{"primary key", "ferry sync --restart"}},
		{"unreadable", "ALTER TABLE %s ADD COLUMN w int, ALGORITHM=COPY, ADD CONSTRAINT c CHECK (w > 0), MODIFY v varchar(10) NOT NULL",
			nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tbl := fmt.Sprintf("t%d", i)
			src, tables, t0 := flowStart(t, s, db, "CREATE TABLE "+tbl+" (id int NOT NULL, v varchar(10) NOT NULL, PRIMARY KEY (id))",
				"INSERT INTO "+tbl+" VALUES (1, 'a')")
			var mine []*model.Table
			for _, tb := range tables {
				if tb.Namespace.Table == tbl {
					mine = append(mine, tb)
				}
			}
			stmt := fmt.Sprintf(c.alter, tbl)
			s.Exec(t, use+stmt, use+"INSERT INTO "+tbl+" (id, v) VALUES (2, 'b')")
			batches, err := streamUntil(t, src, mine, t0, head(t, src), nil)
			if c.want == nil {
				// Followed: every specification is one ferry reads.
				if err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				if n := len(events(t, batches, mine)); n != 2 {
					t.Fatalf("%s: %d events", stmt, n)
				}
				return
			}
			if !contains(err, append([]string{db + "." + tbl, "writes nothing wrong"}, c.want...)...) {
				t.Fatalf("%s: error %v", stmt, err)
			}
			for _, ch := range changesOf(batches) {
				if ch.Row != nil && ch.Row[0] == int64(2) {
					t.Fatalf("%s: the row after the ALTER was emitted", stmt)
				}
			}
		})
	}
}

// TestCDCFollowsTableSwap reproduces gh-ost's statements (gh-ost itself is
// not installable here): a shadow table created like the flow's, altered
// (a column added, one widened), filled outside the flow, then swapped in
// by one RENAME TABLE. The stream emits the table's new definition asking
// for a re-copy, and decodes the later rows by it.
func TestCDCFollowsTableSwap(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "ghost")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY, v varchar(10) NOT NULL)", "INSERT INTO t VALUES (1, 'a')")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"CREATE TABLE `_t_ghc` (id bigint auto_increment, last_update timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, hint varchar(64) NOT NULL, value text, PRIMARY KEY (id), UNIQUE KEY hint_uidx (hint))",
		use+"CREATE TABLE `_t_gho` LIKE `t`",
		use+"ALTER TABLE `_t_gho` ADD COLUMN w int NOT NULL DEFAULT 5, MODIFY v varchar(30) NOT NULL",
		use+"INSERT INTO `_t_ghc` (hint, value) VALUES ('state', 'GhostTableMigrated')",
		use+"INSERT INTO t VALUES (2, 'b')",
		use+"INSERT IGNORE INTO `_t_gho` (id, v) SELECT id, v FROM t",
		use+"REPLACE INTO `_t_gho` (id, v) VALUES (2, 'b')",
		use+"RENAME TABLE `t` TO `_t_del`, `_t_gho` TO `t`",
		use+"INSERT INTO t VALUES (3, 'a longer value than before', 6)",
		use+"DROP TABLE `_t_del`, `_t_ghc`",
	)
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "the swap", events(t, batches, tables), []string{
		"insert t (2, b)",
		"schema t (id int(11), v varchar(30), w int(11)) key [id]",
		"insert t (3, a longer value than before, 6)",
	})
	sc := schemaChanges(batches)[0]
	if !sc.Recopy || len(sc.Renamed) != 0 || len(sc.Filled) != 0 {
		t.Fatalf("the swap's schema change must ask for a re-copy, and carry no renames nor filled values: %+v", sc)
	}
	if c := sc.Table.Columns; c[1].Nullable || !c[2].Nullable {
		t.Fatalf("v keeps NOT NULL, the added w goes nullable until the copy fills it: %+v", c)
	}

	// Resumed just before the swap with the definition it gave (the flow's
	// state has it), the stream gives it again, still nullable where it
	// was, and asks for the copy again.
	var before model.Position
	for i, b := range batches {
		if len(b.Schemas) > 0 {
			before = batches[i-1].Position
			break
		}
	}
	again, err := streamUntil(t, src, []*model.Table{sc.Table}, before, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "the swap replayed", events(t, again, []*model.Table{sc.Table}), []string{
		"schema t (id int(11), v varchar(30), w int(11)) key [id]",
		"insert t (3, a longer value than before, 6)",
	})
	if sc := schemaChanges(again)[0]; !sc.Recopy || !sc.Table.Columns[2].Nullable {
		t.Fatalf("the replayed swap: %+v", sc)
	}

	// A table renamed away, with nothing in its place, stops the flow.
	src, tables, t0 = flowStart(t, s, db, "CREATE TABLE u (id int PRIMARY KEY)")
	s.Exec(t, use+"RENAME TABLE u TO u_old")
	_, err = streamUntil(t, src, tables, t0, head(t, src), nil)
	if !contains(err, "table "+db+".u was renamed to "+db+".u_old", "ferry sync --restart") {
		t.Fatalf("a renamed table: %v", err)
	}

	// A table without a primary key cannot be copied again while changes
	// stream: the flow stops, saying what to do.
	src, tables, t0 = flowStart(t, s, db, "CREATE TABLE nokey (a int, b int)")
	s.Exec(t, use+"CREATE TABLE _nokey_gho LIKE nokey", use+"RENAME TABLE nokey TO _nokey_del, _nokey_gho TO nokey")
	var keyless []*model.Table
	for _, tb := range tables {
		if tb.Namespace.Table == "nokey" {
			keyless = append(keyless, tb)
		}
	}
	_, err = streamUntil(t, src, keyless, t0, head(t, src), nil)
	if !contains(err, "table "+db+".nokey was replaced by table "+db+"._nokey_gho", "without a primary key cannot be copied again", "add a primary key", "ferry sync --restart") {
		t.Fatalf("a keyless table swapped: %v", err)
	}

	// A shadow table with another primary key: the flow stops, naming both.
	src, tables, t0 = flowStart(t, s, db, "CREATE TABLE k (id int PRIMARY KEY, v int NOT NULL)")
	s.Exec(t, use+"CREATE TABLE _k_new (id int NOT NULL, v int NOT NULL, PRIMARY KEY (id, v))", use+"RENAME TABLE k TO _k_old, _k_new TO k")
	var mine []*model.Table
	for _, tb := range tables {
		if tb.Namespace.Table == "k" {
			mine = append(mine, tb)
		}
	}
	_, err = streamUntil(t, src, mine, t0, head(t, src), nil)
	if !contains(err, "table "+db+".k was replaced by table "+db+"._k_new", "primary key is (id, v)", "was (id)", "ferry sync --restart") {
		t.Fatalf("a swap to another key: %v", err)
	}
}

// TestCDCFollowsTablesExchanged: two flow tables exchanged by one RENAME
// TABLE each hold the other's rows afterwards: both are copied again, with
// the other's definition.
func TestCDCFollowsTablesExchanged(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "exch")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE a (id int PRIMARY KEY, x int)", "CREATE TABLE b (id int PRIMARY KEY, y varchar(5))")
	use := "USE `" + db + "`; "
	s.Exec(t, use+"RENAME TABLE a TO tmp, b TO a, tmp TO b", use+"INSERT INTO a VALUES (1, 'y')", use+"INSERT INTO b VALUES (2, 3)")
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := events(t, batches, tables)
	sort.Strings(got[:2]) // the two schema changes come in one batch
	sameEvents(t, "exchanged", got, []string{
		"schema a (id int(11), y varchar(5)) key [id]",
		"schema b (id int(11), x int(11)) key [id]",
		"insert a (1, y)",
		"insert b (2, 3)",
	})
	for _, sc := range schemaChanges(batches) {
		if !sc.Recopy {
			t.Fatalf("%s: no re-copy", sc.Table.Namespace)
		}
	}
}

// TestCDCTableSwapBehindTheServer: when the stream reads a swap after the
// table changed again, the server's definition is the later one, and the
// rows written between do not fit it: the flow stops at the first of them
// rather than decode them by the wrong columns.
func TestCDCTableSwapBehindTheServer(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "swapbehind")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY, v int)")
	use := "USE `" + db + "`; "
	s.Exec(t, use+"CREATE TABLE _t_gho LIKE t", use+"ALTER TABLE _t_gho ADD w int", use+"RENAME TABLE t TO _t_del, _t_gho TO t",
		use+"INSERT INTO t VALUES (1, 2, 3)", use+"ALTER TABLE t ADD z int", use+"INSERT INTO t VALUES (4, 5, 6, 7)")
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if !contains(err, db+".t", "rows of 3 columns", "the flow knows 4", "ferry sync --restart") {
		t.Fatalf("rows that do not fit the swapped-in definition: %v", err)
	}
	if n := len(changesOf(batches)); n != 0 {
		t.Fatalf("%d changes emitted", n)
	}
}

func schemaChanges(batches []*model.ChangeBatch) []model.SchemaChange {
	var out []model.SchemaChange
	for _, b := range batches {
		out = append(out, b.Schemas...)
	}
	return out
}

// TestCDCRecopiesValuesTheBinlogDoesNotCarry: an added column whose
// default is an expression got a value per existing row that no binlog
// event carries; the stream emits it nullable and asks for a re-copy, and
// the rows after it carry their own values.
func TestCDCRecopiesValuesTheBinlogDoesNotCarry(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "recopy")
	use := "USE `" + db + "`; "
	cases := []struct {
		name, add, col string
	}{
		{"rand", "ADD COLUMN r double NOT NULL DEFAULT (RAND())", "r double"},
		{"current time", "ADD COLUMN ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP", "ts timestamp"},
		{"uuid", "ADD COLUMN u char(36) NOT NULL DEFAULT (UUID())", "u char(36)"},
		{"auto increment", "ADD COLUMN n int AUTO_INCREMENT UNIQUE", "n int(11)"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tbl := fmt.Sprintf("t%d", i)
			src, tables, t0 := flowStart(t, s, db, "CREATE TABLE "+tbl+" (id int NOT NULL, v varchar(10) NOT NULL, PRIMARY KEY (id))",
				"INSERT INTO "+tbl+" VALUES (1, 'a')")
			var mine []*model.Table
			for _, tb := range tables {
				if tb.Namespace.Table == tbl {
					mine = append(mine, tb)
				}
			}
			s.Exec(t, use+"ALTER TABLE "+tbl+" "+c.add, use+"INSERT INTO "+tbl+" (id, v) VALUES (2, 'b')")
			batches, err := streamUntil(t, src, mine, t0, head(t, src), nil)
			if err != nil {
				t.Fatal(err)
			}
			scs := schemaChanges(batches)
			if len(scs) != 1 {
				t.Fatalf("%d schema changes", len(scs))
			}
			sc := scs[0]
			if got := columnNames(sc.Table); got != "id int(11), v varchar(10), "+c.col {
				t.Fatalf("columns %s", got)
			}
			if added := sc.Table.Columns[2]; !sc.Recopy || !added.Nullable || len(sc.Filled) != 0 {
				t.Fatalf("want the added column nullable, not filled, and a re-copy: recopy %v, nullable %v, filled %v", sc.Recopy, added.Nullable, sc.Filled)
			}
			ch := changesOf(batches)
			if len(ch) != 1 || ch[0].Row[0] != int64(2) || ch[0].Row[2] == nil {
				t.Fatalf("the row after the ALTER carries its own value: %+v", ch)
			}
			// Replayed after a resume (the flow's state has the column):
			// the same definition, and the copy asked for again.
			again, err := streamUntil(t, src, []*model.Table{sc.Table}, t0, head(t, src), nil)
			if err != nil {
				t.Fatal(err)
			}
			if scs := schemaChanges(again); len(scs) != 1 || !scs[0].Recopy || !sameColumns(scs[0].Table, sc.Table) {
				t.Fatalf("the replayed ALTER: %+v", scs)
			}
		})
	}
	t.Run("without a primary key", func(t *testing.T) {
		src, tables, t0 := flowStart(t, s, db, "CREATE TABLE nokey (a int, b int)", "INSERT INTO nokey VALUES (1, 2)")
		var mine []*model.Table
		for _, tb := range tables {
			if tb.Namespace.Table == "nokey" {
				mine = append(mine, tb)
			}
		}
		s.Exec(t, use+"ALTER TABLE nokey ADD COLUMN u char(36) DEFAULT (UUID())")
		_, err := streamUntil(t, src, mine, t0, head(t, src), nil)
		if !contains(err, db+".nokey", "added column u has the default (UUID())", "without a primary key cannot be copied again", "add a primary key", "ferry sync --restart") {
			t.Fatalf("a keyless table: %v", err)
		}
	})
}

// TestCDCFilledValues checks the value existing rows got for added columns
// of several types, as the server gave it, decoded as their rows are.
func TestCDCFilledValues(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "filled")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	s.Exec(t, "USE `"+db+"`; ALTER TABLE t ADD e enum('red','green') NOT NULL, ADD dt datetime(3) DEFAULT '2024-01-02', "+
		"ADD s varchar(20) CHARACTER SET latin1 NOT NULL DEFAULT 'a\\\\b''c é', ADD ok bool DEFAULT TRUE, ADD n bigint unsigned DEFAULT 18446744073709551615, "+
		"ADD f float NOT NULL, ADD b varbinary(4) DEFAULT x'00ff', ADD j json NOT NULL DEFAULT '{\"k\": [1]}', ADD z varchar(3) NULL DEFAULT NULL, ADD y year NOT NULL DEFAULT (2024)")
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := events(t, batches, tables)
	want := `schema t (id int(11), e enum('red','green'), dt datetime(3), s varchar(20), ok tinyint(1), n bigint(20) unsigned, f float, b varbinary(4), j json, z varchar(3), y year(4)) key [id] filled e="red" dt="2024-01-02T00:00:00" s="a\\b'c é" ok="true" n="18446744073709551615" f="0" b="AP8=" j="{\"k\": [1]}" y="2024"`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("added columns:\n got %s\nwant %s", strings.Join(got, "\n"), want)
	}
}

// TestCDCBehindTheServer: when the stream reads an ALTER after later ones
// changed the column again, the column's definition comes from the
// statement when nothing in it is implicit, and the flow stops otherwise.
func TestCDCBehindTheServer(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "behind")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"ALTER TABLE t ADD n smallint NOT NULL DEFAULT 3, ADD s varchar(5) CHARACTER SET utf8mb4 DEFAULT 'x'",
		use+"INSERT INTO t VALUES (1, 4, 'y')",
		use+"ALTER TABLE t DROP n, DROP s",
		use+"INSERT INTO t VALUES (2)",
	)
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "columns the server no longer has", events(t, batches, tables), []string{
		`schema t (id int(11), n smallint, s varchar(5)) key [id] filled n="3" s="x"`,
		"insert t (1, 4, y)",
		"schema t (id int(11)) key [id]",
		"insert t (2)",
	})

	// A text column without its character set: the server's table default
	// decides it, and ferry cannot know it any more.
	src, tables, t0 = flowStart(t, s, db, "CREATE TABLE u (id int PRIMARY KEY)")
	s.Exec(t, use+"ALTER TABLE u ADD v varchar(5)", use+"ALTER TABLE u DROP v")
	_, err = streamUntil(t, src, tables[1:], t0, head(t, src), nil)
	if !contains(err, db+".u", "ALTER TABLE u ADD v varchar(5)", "column v (varchar(5) in the statement)", "the stream is behind the server", "ferry sync --restart") {
		t.Fatalf("a text column the server no longer has: %v", err)
	}
}

// TestCDCReplayedAddColumn: a flow resumed before an ALTER it followed (its
// state already has the column) gets no second schema change.
func TestCDCReplayedAddColumn(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "replay")
	src, tables, _ := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	before := head(t, src)
	s.Exec(t, "USE `"+db+"`; ALTER TABLE t ADD c int NOT NULL DEFAULT 1", "USE `"+db+"`; INSERT INTO t VALUES (5, 6)")
	batches, err := streamUntil(t, src, tables, before, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	known := batches[0].Schemas[0].Table
	again, err := streamUntil(t, src, []*model.Table{known}, before, head(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "replayed", events(t, again, []*model.Table{known}), []string{"insert t (5, 6)"})
}

// TestCDCFilledNeedsTemporaryTables: the value of an added column's
// default is read through a temporary table; without the privilege the
// flow stops saying which grant it needs.
func TestCDCFilledNeedsTemporaryTables(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "notmp")
	s.Exec(t, "USE `"+db+"`; CREATE TABLE t (id int PRIMARY KEY)")
	user := s.CreateUser(t, "cdc_notmp", "pw", "SELECT ON `"+db+"`.*", "REPLICATION SLAVE, BINLOG MONITOR ON *.*")
	src := openConn(t, s.UserURL(user, "pw", db))
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from := head(t, src)
	s.Exec(t, "USE `"+db+"`; ALTER TABLE t ADD c int NOT NULL DEFAULT 1")
	_, err = streamUntil(t, src, tables, from, head(t, src), nil)
	if !contains(err, db+".t", "added column c", "DEFAULT 1", "CREATE TEMPORARY TABLES") {
		t.Fatalf("without CREATE TEMPORARY TABLES: %v", err)
	}
}

// TestCDCFollowsPtOnlineSchemaChange runs Percona's pt-online-schema-change
// (Debian's percona-toolkit) on a flow table: triggers copy writes into a
// shadow table, which is filled and swapped in by RENAME TABLE. The stream
// emits the new definition asking for a re-copy at the swap and decodes
// the later rows by it.
func TestCDCFollowsPtOnlineSchemaChange(t *testing.T) {
	pt, err := exec.LookPath("pt-online-schema-change")
	if err != nil {
		t.Skip("pt-online-schema-change is not installed (Debian package percona-toolkit)")
	}
	s := mysqltest.Shared(t)
	db := newDB(t, s, "ptosc")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY, v varchar(10))", "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	s.Exec(t, "USE `"+db+"`; INSERT INTO t VALUES (3, 'c')")
	out, err := exec.Command(pt, "--execute", "--alter", "ADD COLUMN w int NOT NULL DEFAULT 5, MODIFY v varchar(40)", "--recursion-method", "none",
		"--no-check-replication-filters", fmt.Sprintf("h=127.0.0.1,P=%d,u=root,D=%s,t=t", s.Port, db)).CombinedOutput()
	if err != nil {
		t.Fatalf("pt-online-schema-change: %v\n%s", err, out)
	}
	s.Exec(t, "USE `"+db+"`; INSERT INTO t VALUES (4, 'after the swap', 7)")
	batches, err := streamUntil(t, src, tables, t0, head(t, src), nil)
	if err != nil {
		t.Fatalf("pt-online-schema-change's swap: %v\n%s", err, out)
	}
	sameEvents(t, "pt-online-schema-change", events(t, batches, tables), []string{
		"insert t (3, c)",
		"schema t (id int(11), v varchar(40), w int(11)) key [id]",
		"insert t (4, after the swap, 7)",
	})
	if sc := schemaChanges(batches)[0]; !sc.Recopy {
		t.Fatalf("the swap must ask for a re-copy: %+v", sc)
	}
}
