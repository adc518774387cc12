package mysql

import (
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// selectNames is a NewTables choosing tables by name.
func selectNames(names ...string) connector.StreamOptions {
	return connector.StreamOptions{NewTables: func(ns model.Namespace) bool {
		for _, n := range names {
			if ns.Table == n {
				return true
			}
		}
		return false
	}}
}

func createdDef(t *testing.T, batches []*model.ChangeBatch, name string) *model.Table {
	t.Helper()
	for _, b := range batches {
		for _, sc := range b.Schemas {
			if sc.Created && sc.Table.Namespace.Table == name {
				return sc.Table
			}
		}
	}
	t.Fatalf("no Created for table %s", name)
	return nil
}

// TestCDCFollowsCreatedTable: a table created during the stream that
// NewTables selects comes as Created, with its columns, key and indexes,
// before its first row; its rows then stream like a flow table's. One it
// does not select, and a temporary table, bring nothing.
func TestCDCFollowsCreatedTable(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "created")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"CREATE TABLE n (id bigint NOT NULL AUTO_INCREMENT, name varchar(20) NOT NULL DEFAULT 'x', j json, ts datetime(3), PRIMARY KEY (id), KEY by_name (name)) DEFAULT CHARSET=utf8mb4",
		use+"INSERT INTO n (name, j, ts) VALUES ('a', '{\"k\": 1}', '2026-12-06 10:00:00.125'), ('b', NULL, NULL)",
		use+"UPDATE n SET name = 'bb' WHERE id = 2",
		use+"CREATE TABLE other (id int PRIMARY KEY)",
		use+"INSERT INTO other VALUES (1)",
		use+"CREATE TEMPORARY TABLE n2 (id int PRIMARY KEY)",
		use+"DELETE FROM n WHERE id = 1",
	)
	batches, err := streamWith(t, src, tables, t0, head(t, src), selectNames("n", "n2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "the new table", events(t, batches, tables), []string{
		"schema n (id bigint(20), name varchar(20), j json, ts datetime(3)) key [id] created",
		`insert n (1, a, {"k": 1}, 2026-12-06T10:00:00.125)`,
		"insert n (2, b, NULL, NULL)",
		"update n (2, bb, NULL, NULL)",
		"delete n",
	})
	n := createdDef(t, batches, "n")
	if n.Columns[2].Type.Kind != model.KindJSON || n.Columns[0].Identity == nil || n.Columns[1].Constant == nil || len(n.Indexes) != 1 || n.Indexes[0].Name != "by_name" {
		t.Errorf("the definition lacks what discovery finds: %+v", n)
	}
	found, err := src.Tables(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := tableNamed(t, found, "n"); columnNames(want) != columnNames(n) || len(want.Uncarried) != len(n.Uncarried) {
		t.Errorf("Created's definition %+v, discovery's %+v", n, want)
	}
}

// TestCDCCreatedTableBehindTheServer: the stream reads the CREATE TABLE
// after the table was altered (and another one dropped): Created has the
// table as it was created, the ALTER follows as a schema change, and each
// row decodes by the definition of its point in the binlog.
func TestCDCCreatedTableBehindTheServer(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "createdbehind")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"CREATE TABLE n (id int PRIMARY KEY, a varchar(10) NOT NULL, b int)",
		use+"INSERT INTO n VALUES (1, 'x', 10)",
		use+"ALTER TABLE n ADD COLUMN c varchar(5) NULL FIRST, MODIFY b bigint",
		use+"INSERT INTO n VALUES ('c', 2, 'y', 5000000000)",
		use+"CREATE TABLE gone (id int PRIMARY KEY, v text)",
		use+"INSERT INTO gone VALUES (1, 'v')",
		use+"DROP TABLE gone",
	)
	batches, err := streamWith(t, src, tables, t0, head(t, src), selectNames("n", "gone"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "the new table, altered since", events(t, batches, tables), []string{
		"schema n (id int(11), a varchar(10), b int(11)) key [id] created",
		"insert n (1, x, 10)",
		"schema n (c varchar(5), id int(11), a varchar(10), b bigint(20)) key [id]",
		"insert n (c, 2, y, 5000000000)",
		"schema gone (id int(11), v text) key [id] created",
		"insert gone (1, v)",
		"schema gone (id int(11), v text) key [id] dropped",
	})
}

// TestCDCCreatedTableForms: CREATE TABLE ... LIKE, ... SELECT (the binlog
// has the new table's definition, then its rows in the same transaction),
// IF NOT EXISTS of a table that exists (nothing).
func TestCDCCreatedTableForms(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "createdforms")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY, v varchar(5))", "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"CREATE TABLE l LIKE t",
		use+"INSERT INTO l VALUES (3, 'c')",
		use+"CREATE TABLE c (extra int) SELECT id, v FROM t",
		use+"CREATE TABLE IF NOT EXISTS t (x int)",
		use+"CREATE TABLE IF NOT EXISTS l (x int)",
		use+"INSERT INTO l VALUES (4, 'd')",
	)
	batches, err := streamWith(t, src, tables, t0, head(t, src), selectNames("l", "c"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "LIKE and SELECT", events(t, batches, tables), []string{
		"schema l (id int(11), v varchar(5)) key [id] created",
		"insert l (3, c)",
		"schema c (extra int(11), id int(11), v varchar(5)) key [] created",
		"insert c (NULL, 1, a)",
		"insert c (NULL, 2, b)",
		"insert l (4, d)",
	})
}

// TestCDCCreatedTableNotSelected: without NewTables, or when it says no,
// a new table brings nothing, nor do its rows.
func TestCDCCreatedTableNotSelected(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "creatednot")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"CREATE TABLE n (id int PRIMARY KEY)",
		use+"INSERT INTO n VALUES (1)",
		use+"INSERT INTO t VALUES (1)",
	)
	for _, opts := range []connector.StreamOptions{{}, selectNames("other")} {
		batches, err := streamWith(t, src, tables, t0, head(t, src), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, "an unselected table", events(t, batches, tables), []string{"insert t (1)"})
	}
}

// TestCDCDroppedTable: DROP TABLE of a flow table comes as Dropped and the
// stream goes on; a dropped table's name created again is a new table.
func TestCDCDroppedTable(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "dropped")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE a (id int PRIMARY KEY)", "CREATE TABLE keep (id int PRIMARY KEY)")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"INSERT INTO a VALUES (1)",
		use+"DROP TABLE IF EXISTS a, nothere",
		use+"INSERT INTO keep VALUES (1)",
		use+"CREATE TABLE a (id int PRIMARY KEY, v int)",
		use+"INSERT INTO a VALUES (2, 20)",
		use+"DROP TABLE a",
		use+"INSERT INTO keep VALUES (2)",
	)
	batches, err := streamWith(t, src, tables, t0, head(t, src), selectNames("a"), nil)
	if err != nil {
		t.Fatalf("a dropped table stopped the flow: %v", err)
	}
	sameEvents(t, "dropped tables", events(t, batches, tables), []string{
		"insert a (1)",
		"schema a (id int(11)) key [id] dropped",
		"insert keep (1)",
		"schema a (id int(11), v int(11)) key [id] created",
		"insert a (2, 20)",
		"schema a (id int(11), v int(11)) key [id] dropped",
		"insert keep (2)",
	})
}

// TestCDCDroppedDatabase: DROP DATABASE drops each flow table in it.
func TestCDCDroppedDatabase(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "droppeddb")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE b (id int PRIMARY KEY)", "CREATE TABLE a (id int PRIMARY KEY)")
	s.Exec(t, "USE `"+db+"`; INSERT INTO b VALUES (1)", "DROP DATABASE `"+db+"`")
	batches, err := streamWith(t, src, tables, t0, head(t, src), connector.StreamOptions{}, nil)
	if err != nil {
		t.Fatalf("a dropped database stopped the flow: %v", err)
	}
	sameEvents(t, "a dropped database", events(t, batches, tables), []string{
		"insert b (1)",
		"schema a (id int(11)) key [id] dropped",
		"schema b (id int(11)) key [id] dropped",
	})
}

// TestCDCCreatedTableNeedsTemporaryTables: a user who may not create
// temporary tables gets what to grant, and the flow writes nothing of the
// table.
func TestCDCCreatedTableNeedsTemporaryTables(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "creatednotemp")
	_, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	user := s.CreateUser(t, "cdc_notmp_new", "pw", "SELECT ON `"+db+"`.*", "REPLICATION SLAVE, BINLOG MONITOR ON *.*")
	s.Exec(t, "USE `"+db+"`; CREATE TABLE n (id int PRIMARY KEY)")
	src := openConn(t, s.UserURL(user, "pw", db))
	_, err := streamWith(t, src, tables, t0, head(t, src), selectNames("n"), nil)
	if err == nil || !contains(err, db+".n", "GRANT CREATE TEMPORARY TABLES") {
		t.Fatalf("got %v, want what to grant", err)
	}
}

// TestCDCCreatedTableRenamedIn: a table renamed to a selected name (not a
// swap: no flow table was there) is new to the flow, and a flow table
// renamed away is dropped from its name; a selected name an
// online schema change tool would give its work tables is not, so its
// swap goes on as without NewTables.
func TestCDCCreatedTableRenamedIn(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "renamedin")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY, v varchar(10) NOT NULL)", "INSERT INTO t VALUES (1, 'a')")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"CREATE TABLE staging (id int PRIMARY KEY, v int)",
		use+"INSERT INTO staging VALUES (1, 10)",
		use+"RENAME TABLE staging TO live",
		use+"INSERT INTO live VALUES (2, 20)",
		use+"CREATE TABLE `_t_gho` LIKE `t`",
		use+"ALTER TABLE `_t_gho` ADD COLUMN w int NOT NULL DEFAULT 5",
		use+"INSERT INTO `_t_gho` (id, v) SELECT id, v FROM t",
		use+"RENAME TABLE `t` TO `_t_del`, `_t_gho` TO `t`",
		use+"DROP TABLE `_t_del`",
		use+"INSERT INTO t VALUES (3, 'c', 6)",
	)
	all := connector.StreamOptions{NewTables: func(model.Namespace) bool { return true }}
	batches, err := streamWith(t, src, tables, t0, head(t, src), all, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "renamed in, and a swap", events(t, batches, tables), []string{
		"schema staging (id int(11), v int(11)) key [id] created",
		"insert staging (1, 10)",
		"schema staging (id int(11), v int(11)) key [id] dropped",
		"schema live (id int(11), v int(11)) key [id] created",
		"insert live (2, 20)",
		"schema t (id int(11), v varchar(10), w int(11)) key [id]",
		"insert t (3, c, 6)",
	})
}

// TestCDCCreatedLikeAChangedTable: a CREATE TABLE ... LIKE read after the
// table it copies changed: the rows do not fit the definition read, and
// the flow stops, naming the table, rather than write them wrong.
func TestCDCCreatedLikeAChangedTable(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "createdlike")
	src, tables, t0 := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY, v varchar(5))")
	use := "USE `" + db + "`; "
	s.Exec(t,
		use+"CREATE TABLE l LIKE t",
		use+"INSERT INTO l VALUES (1, 'a')",
		use+"ALTER TABLE t ADD COLUMN z int",
	)
	batches, err := streamWith(t, src, tables, t0, head(t, src), selectNames("l"), nil)
	if !contains(err, "table "+db+".l, created during the flow", "of 2 columns, the definition has 3", "ferry sync --restart") {
		t.Fatalf("got %v, want the flow stopped at l's rows", err)
	}
	if got := changesOf(batches); len(got) != 0 {
		t.Fatalf("rows of l were emitted: %v", got)
	}
}

func TestSQLModeFromStatusVars(t *testing.T) {
	mode := []byte{1, 0x20, 0, 0, 0x40, 0, 0, 0, 0} // Q_SQL_MODE_CODE
	for _, c := range []struct {
		vars []byte
		want string
	}{
		{append([]byte{0, 0, 0, 0, 0}, mode...), "1073741856"}, // after Q_FLAGS2_CODE
		{mode, "1073741856"},
		{[]byte{0, 0, 0}, "none"},
		{[]byte{5, 1, 2}, "none"},
		{nil, "none"},
	} {
		got := "none"
		if m := sqlMode(c.vars); m != nil {
			got = fmt.Sprint(*m)
		}
		if got != c.want {
			t.Errorf("%v: %s, want %s", c.vars, got, c.want)
		}
	}
}
