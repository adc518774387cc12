package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Tables created and dropped while the stream runs
// (docs/decisions/2026-12-06-new-tables-during-cdc-mysql.md). A CREATE
// TABLE in the binlog of a table connector.StreamOptions.NewTables
// selects is emitted as a model.SchemaChange with Created, and the stream
// follows the table from there on: the binlog carries every table's rows.
// The definition is the table's at that point of the binlog, which the
// server's current one is not when the stream lags (the table may have
// been altered or dropped since): the stream runs the statement again as a
// temporary table of its own and reads that table's columns and indexes,
// taking a column's details (its default, its generation) from the
// server's table where it still has that very column. A DROP TABLE of a
// flow table is emitted with Dropped, and the stream forgets the table.

// createTable follows a CREATE TABLE of table ns at where: the statement
// ct, run in the session database db with SQL mode mode (nil: the
// server's).
func (s *stream) createTable(ctx context.Context, ns model.Namespace, ct *createTable, db string, mode *uint64, where string) error {
	if s.c.server.lowerCase == 1 {
		ns = lowerNS(ns) // the server stores the name lower-cased
	}
	if s.flow(ns) != nil {
		// CREATE TABLE IF NOT EXISTS of a flow table changed nothing, and
		// a CREATE the stream replays after a resume made the table the
		// flow now has.
		return nil
	}
	if s.newTables == nil || !s.c.reads(ns) || !s.newTables(ns) || shadowTable(ns.Table) {
		return nil
	}
	info, err := s.c.createdTable(ctx, ns, ct, db, mode)
	if err != nil {
		if errs.IsConfigError(err) || ctx.Err() != nil {
			return fatal(err)
		}
		if lostConnection(err) {
			return err // the server went away: retried
		}
		return fatal(fmt.Errorf("table %s was created at %s, and ferry cannot tell its definition at that point: %w; the flow stops here and writes nothing wrong: fix that and run the flow again (ferry sync), it resumes at this statement", ns, where, err))
	}
	if err := info.problem(); err != nil {
		return fatal(fmt.Errorf("table %s was created at %s and the flow selects it, but ferry cannot read it: %w; the flow stops here: leave the table out of the flow's --tables, or change the column, and run the flow again (ferry sync)", ns, where, err))
	}
	st, err := s.c.newStreamTable(info.table, info)
	if err != nil {
		return fatal(err)
	}
	st.created = true
	s.tables[ns] = st
	s.lower[lowerNS(ns)] = st
	s.schemas = append(s.schemas, model.SchemaChange{Table: info.table.Clone(), Created: true})
	s.c.log.Info("mysql: a table was created at the source; the flow follows it", "table", ns.String(), "at", where)
	return nil
}

// reads tells whether ns is in a database the source reads (discovery's
// sourceDatabases): the URL's database, or any but the server's own. A
// table created in another database of the server (a destination on the
// same server) is not the source's, whatever --tables says.
func (c *Conn) reads(ns model.Namespace) bool {
	if c.database != "" {
		return ns.Schema == c.database || c.server.lowerCase != 0 && strings.EqualFold(ns.Schema, c.database)
	}
	return !systemDBs[strings.ToLower(ns.Schema)]
}

// shadowRe matches the tables online schema change tools make beside a
// table (gh-ost's _t_gho, _t_ghc, _t_del, _t_20261206120000_del;
// pt-online-schema-change's _t_new, _t_old, __t_new; Facebook's
// __osc_new_t) and ferry's own (_ferry_...).
var shadowRe = regexp.MustCompile(`^(_.+_(gho|ghc|del|new|old)|__osc_.+|_ferry_.*)$`)

// shadowTable tells whether a created table is a tool's work table, which
// the flow never follows even when NewTables selects it: its rows reach a
// flow table by the tool's table swap (swap), and following it would
// stop the flow at the swap's rename.
func shadowTable(name string) bool {
	return shadowRe.MatchString(strings.ToLower(name))
}

// dropTables follows a DROP TABLE of tables, or DROP DATABASE of dbs: each
// flow table among them is emitted with Dropped and no longer followed.
func (s *stream) dropTables(tables []model.Namespace, dbs []string, where string) {
	var gone []*streamTable
	for _, ns := range tables {
		if t := s.flow(ns); t != nil {
			gone = append(gone, t)
		}
	}
	var inDBs []*streamTable
	for _, db := range dbs {
		for ns, t := range s.tables {
			if ns.Schema == db || (s.c.server.lowerCase != 0 && strings.EqualFold(ns.Schema, db)) {
				inDBs = append(inDBs, t)
			}
		}
	}
	sort.Slice(inDBs, func(i, j int) bool { return inDBs[i].table.Namespace.String() < inDBs[j].table.Namespace.String() })
	for _, t := range append(gone, inDBs...) {
		ns := t.table.Namespace
		if s.tables[ns] != t {
			continue // named twice
		}
		delete(s.tables, ns)
		delete(s.lower, lowerNS(ns))
		for _, tm := range s.ids {
			if tm.st == t {
				tm.st = nil
			}
		}
		s.schemas = append(s.schemas, model.SchemaChange{Table: t.table.Clone(), Dropped: true})
		s.c.log.Info("mysql: a flow table was dropped at the source; the flow no longer follows it", "table", ns.String(), "at", where)
	}
}

// createdTable is the definition of table ns as CREATE TABLE ct made it:
// the statement runs again as a temporary table, in a session of its own
// (which the pool then discards, and with it the table), whose columns
// and indexes say what the statement made at its point of the binlog.
// The server's table, as discovery reads it, gives what SHOW does not
// (a default as information_schema spells it, a generation expression,
// MariaDB's JSON) for each column it still has with the same type,
// nullability, character set and attributes.
func (c *Conn) createdTable(ctx context.Context, ns model.Namespace, ct *createTable, db string, mode *uint64) (*tableInfo, error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	defer conn.Close()
	// The session's settings and its temporary table must not reach the
	// pool's other users.
	defer conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // it only discards the session
	if mode != nil {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION sql_mode = %d", *mode)); err != nil {
			return nil, c.scrubber.Err(err)
		}
	}
	if db != "" {
		// The statement's unqualified names (REFERENCES) are of it.
		if _, err := conn.ExecContext(ctx, "USE "+quoteIdent(db)); err != nil {
			return nil, c.scrubber.Err(err)
		}
	}
	tmp := quoteIdent(ns.Schema) + "." + quoteIdent(fmt.Sprintf("_ferry_created_%d", time.Now().UnixNano()))
	stmt := "CREATE TEMPORARY TABLE " + tmp + ct.body
	if ct.like != nil {
		stmt = "CREATE TEMPORARY TABLE " + tmp + " LIKE " + quoteName(*ct.like)
	} else if toks := tokenize(ct.body); len(toks) >= 2 && strings.EqualFold(toks[len(toks)-2].text, "START") && strings.EqualFold(toks[len(toks)-1].text, "TRANSACTION") {
		// MySQL logs CREATE TABLE ... SELECT as the new table's
		// definition with START TRANSACTION, which a temporary table
		// does not take.
		stmt = "CREATE TEMPORARY TABLE " + tmp + ct.body[:toks[len(toks)-3].end]
	}
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		switch errCode(err) {
		case 1044, 1142:
			return nil, errs.BadConfig(fmt.Sprintf("mysql %s: table %s was created during CDC and ferry reads its definition through a temporary table, which user %q may not create: %s", c.host, ns, c.user, c.scrubber.Err(err)),
				fmt.Sprintf("GRANT CREATE TEMPORARY TABLES ON %s.* TO %s, then run the flow again (ferry sync): it resumes at the CREATE TABLE", quoteIdent(ns.Schema), quoteString(c.user)))
		}
		return nil, fmt.Errorf("running the statement as a temporary table: %w", c.scrubber.Err(err))
	}
	made, err := c.describeTemporary(ctx, conn, ns, tmp)
	if err != nil {
		return nil, err
	}
	infos, err := c.describeTables(ctx, []*model.Table{{Namespace: ns}})
	if err != nil {
		return nil, err
	}
	if cur := infos[ns]; cur != nil {
		for i, col := range made.table.Columns {
			j := cur.table.ColumnIndex(col.Name)
			if j < 0 {
				continue
			}
			cc := cur.table.Columns[j]
			if cc.Type.Native != col.Type.Native || cc.Nullable != col.Nullable || cur.charsets[j] != made.charsets[i] || !strings.EqualFold(cur.extras[j], made.extras[i]) {
				continue // changed since the statement
			}
			made.table.Columns[i] = cc
			made.defaults[i], made.generated[i], made.generation[i] = cur.defaults[j], cur.generated[j], cur.generation[j]
			delete(made.problems, col.Name)
			if err := cur.problems[col.Name]; err != nil {
				made.problems[col.Name] = err
			}
		}
		made.table.EstimatedRows, made.table.EstimatedBytes = cur.table.EstimatedRows, cur.table.EstimatedBytes
	}
	made.table.Columns = resetDefinitions(made.table.Columns)
	made.table.PrimaryKey = keyOf(made.indexes)
	c.readDefinitions(made.tableInfo, made.indexes)
	return made.tableInfo, nil
}

// resetDefinitions clears what readDefinitions sets, on columns copied
// from a table it already defined.
func resetDefinitions(cols []model.Column) []model.Column {
	for i := range cols {
		cols[i].Identity, cols[i].Constant = nil, nil
	}
	return cols
}

// temporaryInfo is a temporary table as SHOW describes it.
type temporaryInfo struct {
	*tableInfo
	indexes []*sourceIndex
}

// describeTemporary reads temporary table tmp of session conn, which
// information_schema does not list, with SHOW FULL COLUMNS and SHOW
// INDEX, into the definition of table ns.
func (c *Conn) describeTemporary(ctx context.Context, conn *sql.Conn, ns model.Namespace, tmp string) (*temporaryInfo, error) {
	ti := &tableInfo{table: &model.Table{Namespace: ns, FullRowIdentity: c.server.rowImage == "FULL"}, problems: map[string]error{}}
	var create string
	if err := conn.QueryRowContext(ctx, "SHOW CREATE TABLE "+tmp).Scan(new(string), &create); err != nil {
		return nil, c.scrubber.Err(err)
	}
	cols, err := showRows(ctx, conn, "SHOW FULL COLUMNS FROM "+tmp)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	charsets := map[string]string{}
	for _, r := range cols {
		cr := columnRow{name: r["Field"].String, colType: r["Type"].String, nullable: r["Null"].String, extra: r["Extra"].String}
		if coll := r["Collation"]; coll.Valid {
			cs, ok := charsets[coll.String]
			if !ok {
				if err := conn.QueryRowContext(ctx, "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?", coll.String).Scan(&cs); err != nil {
					return nil, fmt.Errorf("collation %s of column %s: %w", coll.String, cr.name, c.scrubber.Err(err))
				}
				charsets[coll.String] = cs
			}
			cr.charset = cs
		}
		if c.server.mariadb {
			// SHOW shows a string default unquoted, so that it reads like
			// an expression: a column the server's table no longer has as
			// it was gets no default (its rows all come with values).
			cr.json = strings.Contains(create, "CHECK (json_valid("+quoteIdent(cr.name)+"))")
		} else {
			cr.def = r["Default"] // as information_schema spells it
		}
		c.addColumn(ctx, ti, cr)
	}
	idx, err := showRows(ctx, conn, "SHOW INDEX FROM "+tmp)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	var indexes []*sourceIndex
	var last *sourceIndex
	for _, r := range idx {
		name := r["Key_name"].String
		if last == nil || last.name != name {
			k := strings.ToUpper(r["Index_type"].String)
			last = &sourceIndex{name: name, unique: r["Non_unique"].String == "0", kind: k, portable: k == "BTREE" || k == "HASH"}
			indexes = append(indexes, last)
		}
		last.addPart(r["Column_name"], r["Sub_part"], r["Null"].String)
	}
	// In name order, as information_schema lists them.
	sort.SliceStable(indexes, func(i, j int) bool { return indexes[i].name < indexes[j].name })
	return &temporaryInfo{tableInfo: ti, indexes: indexes}, nil
}

// showRows reads a SHOW statement's rows by column name.
func showRows(ctx context.Context, conn *sql.Conn, q string) ([]map[string]sql.NullString, error) {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]sql.NullString
	for rows.Next() {
		vals := make([]sql.NullString, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(map[string]sql.NullString, len(names))
		for i, n := range names {
			r[n] = vals[i]
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// sqlMode reads the SQL mode a QUERY event's session had from its status
// variables (Q_SQL_MODE_CODE, which servers write after Q_FLAGS2_CODE);
// nil when it is not there.
func sqlMode(vars []byte) *uint64 {
	for len(vars) > 0 {
		switch vars[0] {
		case 0: // Q_FLAGS2_CODE
			if len(vars) < 5 {
				return nil
			}
			vars = vars[5:]
		case 1: // Q_SQL_MODE_CODE
			if len(vars) < 9 {
				return nil
			}
			m := binary.LittleEndian.Uint64(vars[1:9])
			return &m
		default:
			return nil
		}
	}
	return nil
}

// createdFits checks a TABLE_MAP of a table the stream saw created against
// the definition it emitted: the same column count, names (when the
// binlog carries them) and types, else the definition is not the one the
// rows were written with (a table ... LIKE another table that changed
// since) and the flow stops rather than write them wrong.
func (s *stream) createdFits(e *replication.TableMapEvent, st *streamTable, h *replication.EventHeader) error {
	t := st.table
	stop := func(format string, a ...any) error {
		return fatal(fmt.Errorf("table %s, created during the flow: the binlog at %s has rows %s, not of the definition ferry read for it at its CREATE TABLE (the statement's tables changed since); the flow stops here and writes nothing wrong: restart the flow (ferry sync --restart)", t.Namespace, s.at(h), fmt.Sprintf(format, a...)))
	}
	if int(e.ColumnCount) != len(t.Columns) {
		return stop("of %d columns, the definition has %d", e.ColumnCount, len(t.Columns))
	}
	if !namesMatch(e, t) {
		return stop("with columns %s", strings.Join(e.ColumnNameString(), ", "))
	}
	for i, col := range t.Columns {
		ct, err := parseColType(col.Type.Native)
		if err != nil {
			continue
		}
		if want, ok := binlogTypes[ct.name]; ok && !strings.ContainsRune(want, rune(e.ColumnType[i])) {
			return stop("whose column %s is of binlog type %d, not %s", col.Name, e.ColumnType[i], col.Type.Native)
		}
	}
	return nil
}

// binlogTypes are the binlog column types (MYSQL_TYPE_*) a column of each
// type is written with, as the runes of a string.
var binlogTypes = map[string]string{
	"tinyint": "\x01", "smallint": "\x02", "mediumint": "\x09", "int": "\x03", "integer": "\x03", "bigint": "\x08",
	"float": "\x04", "double": "\x05", "decimal": "\x00\u00f6", "numeric": "\x00\u00f6",
	"date": "\x0a\x0e", "time": "\x0b\x13", "datetime": "\x0c\x12", "timestamp": "\x07\x11", "year": "\x0d", "bit": "\x10",
	"char": "\u00fe", "binary": "\u00fe", "enum": "\u00fe\u00f7", "set": "\u00fe\u00f8",
	"varchar": "\x0f\u00fd", "varbinary": "\x0f\u00fd",
	"tinytext": "\u00fc\u00f9", "text": "\u00fc", "mediumtext": "\u00fc\u00fa", "longtext": "\u00fc\u00fb",
	"tinyblob": "\u00fc\u00f9", "blob": "\u00fc", "mediumblob": "\u00fc\u00fa", "longblob": "\u00fc\u00fb",
	"json": "\u00f5\u00fc",
}
