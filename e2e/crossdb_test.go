package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// The cross-database tests copy MySQL (MariaDB) into PostgreSQL and back,
// with a writer changing the source during the copy and during CDC, and then
// compare both sides directly, column by column: each column is rendered by
// a SQL expression on each side into one spelling (hex for bytes, ISO text for
// times, the value's decimal digits...), or, where SQL spellings differ
// (floats, JSON, decimals of another scale, intervals), read as values and
// normalized here. Nothing goes through ferry's own decoders, so a value
// ferry reads or writes wrongly shows up as a difference.

// xcmp says how a rendered value is compared.
type xcmp int

const (
	xText     xcmp = iota // the rendered text, byte for byte
	xFloat32              // a float32 value, bit for bit
	xFloat64              // a float64 value, bit for bit
	xJSON                 // a JSON document: keys in any order, any spacing, numbers by value
	xDecimal              // a decimal number by value (1.5 = 1.500)
	xInterval             // months|days|microseconds (MySQL holds ferry's P<m>M<d>DT<s>S text)
)

// xcol is one column compared across the two engines.
type xcol struct {
	name   string
	my, pg string // expressions rendering the column at MySQL and at PostgreSQL
	cmp    xcmp
	// dstType is the column type the destination must have (information_schema's
	// COLUMN_TYPE at MySQL, format_type at PostgreSQL); empty: not checked.
	dstType string
}

const nullMark = "\x00NULL"

// normalize renders a scanned value for comparison.
func (c xcol) normalize(v any) (string, error) {
	if v == nil {
		return nullMark, nil
	}
	switch c.cmp {
	case xFloat32, xFloat64:
		var f float64
		switch x := v.(type) {
		case float32:
			f = float64(x)
		case float64:
			f = x
		default:
			return "", fmt.Errorf("column %s: float read as %T %v", c.name, v, v)
		}
		if c.cmp == xFloat32 {
			if float64(float32(f)) != f {
				return "", fmt.Errorf("column %s: %v is not a float32 value", c.name, f)
			}
			return strconv.FormatFloat(f, 'g', -1, 32), nil
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	default:
		return "", fmt.Errorf("column %s: unexpected %T %v", c.name, v, v)
	}
	switch c.cmp {
	case xJSON:
		return normJSON(s)
	case xDecimal:
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return "", fmt.Errorf("column %s: %q is not a decimal", c.name, s)
		}
		return r.RatString(), nil
	case xInterval:
		if !strings.HasPrefix(s, "P") {
			return s, nil // PostgreSQL's rendering is already months|days|µs
		}
		var months, days int64
		var secs string
		if _, err := fmt.Sscanf(s, "P%dM%dDT%s", &months, &days, &secs); err != nil || !strings.HasSuffix(secs, "S") {
			return "", fmt.Errorf("column %s: %q is not ferry's interval text", c.name, s)
		}
		r, ok := new(big.Rat).SetString(strings.TrimSuffix(secs, "S"))
		if !ok {
			return "", fmt.Errorf("column %s: %q: bad seconds", c.name, s)
		}
		r.Mul(r, big.NewRat(1_000_000, 1))
		if !r.IsInt() {
			return "", fmt.Errorf("column %s: %q: finer than a microsecond", c.name, s)
		}
		return fmt.Sprintf("%d|%d|%s", months, days, r.Num()), nil
	}
	return s, nil
}

// normJSON re-encodes a JSON document with sorted keys, no spacing and
// numbers written by value.
func normJSON(s string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("invalid JSON %q: %w", s, err)
	}
	var b bytes.Buffer
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				kb, _ := json.Marshal(k)
				b.Write(kb)
				b.WriteByte(':')
				walk(x[k])
			}
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range x {
				if i > 0 {
					b.WriteByte(',')
				}
				walk(e)
			}
			b.WriteByte(']')
		case json.Number:
			r, ok := new(big.Rat).SetString(string(x))
			if !ok {
				b.WriteString(string(x))
			} else {
				b.WriteString(r.RatString())
			}
		default:
			vb, _ := json.Marshal(x)
			b.Write(vb)
		}
	}
	walk(v)
	return b.String(), nil
}

// xrows maps a row's key (as text) to its rendered values.
type xrows map[string][]string

// readMySQLX reads table's columns at MySQL, rendered by each column's
// MySQL expression, with the session in UTC.
func readMySQLX(t *testing.T, db *sql.DB, table string, cols []xcol) xrows {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	exprs := []string{"CAST(id AS CHAR)"}
	for _, c := range cols {
		exprs = append(exprs, c.my)
	}
	// A parameter makes it a prepared statement: the binary protocol keeps
	// FLOAT values exact.
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + table + " WHERE 1 = ?"
	rows, err := conn.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := xrows{}
	for rows.Next() {
		vals := make([]any, len(exprs))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		key := string(vals[0].([]byte))
		out[key] = renderX(t, "MySQL", key, cols, vals[1:])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readPGX reads table's columns at PostgreSQL, rendered by each column's
// PostgreSQL expression, with the session in UTC.
func readPGX(t *testing.T, srv *pgtest.Server, db, table string, cols []xcol) xrows {
	t.Helper()
	ctx := context.Background()
	conn := srv.Connect(t, db)
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'; SET extra_float_digits = 3"); err != nil {
		t.Fatal(err)
	}
	exprs := []string{"id::text"}
	for _, c := range cols {
		exprs = append(exprs, c.pg)
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + table
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := xrows{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		key := vals[0].(string)
		out[key] = renderX(t, "PostgreSQL", key, cols, vals[1:])
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func renderX(t *testing.T, side, key string, cols []xcol, vals []any) []string {
	t.Helper()
	out := make([]string, len(cols))
	for i, c := range cols {
		s, err := c.normalize(vals[i])
		if err != nil {
			t.Fatalf("%s, id %s: %v", side, key, err)
		}
		out[i] = s
	}
	return out
}

// compareX fails on a missing, extra or different row, naming the key and
// the columns that differ with both values (up to a few rows).
func compareX(t *testing.T, cols []xcol, src, dst xrows, srcName, dstName string) {
	t.Helper()
	var problems []string
	for k, a := range src {
		b, ok := dst[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("id %s: missing at %s", k, dstName))
			continue
		}
		for i, c := range cols {
			if a[i] != b[i] {
				problems = append(problems, fmt.Sprintf("id %s column %s: %s has %q, %s has %q", k, c.name, srcName, a[i], dstName, b[i]))
			}
		}
	}
	for k := range dst {
		if _, ok := src[k]; !ok {
			problems = append(problems, fmt.Sprintf("id %s: only at %s", k, dstName))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 25 {
			problems = append(problems[:25], fmt.Sprintf("... and %d more", len(problems)-25))
		}
		t.Errorf("%s and %s differ (%d rows at %s, %d at %s):\n%s", srcName, dstName, len(src), srcName, len(dst), dstName, strings.Join(problems, "\n"))
		return
	}
	// Every column must have been exercised with a value and with NULL, or the
	// comparison proves less than it seems.
	for i, c := range cols {
		var null, value bool
		for _, r := range src {
			if r[i] == nullMark {
				null = true
			} else {
				value = true
			}
		}
		if !null || !value {
			t.Errorf("column %s: the source has NULLs %v, values %v: want both", c.name, null, value)
		}
	}
	t.Logf("%d rows of %d columns equal, value by value", len(src), len(cols))
}

// checkPGTypes checks the destination's column types at PostgreSQL.
func checkPGTypes(t *testing.T, srv *pgtest.Server, db, schema, table string, cols []xcol) {
	t.Helper()
	conn := srv.Connect(t, db)
	for _, c := range cols {
		if c.dstType == "" {
			continue
		}
		var typ string
		err := conn.QueryRow(context.Background(), `SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
			JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace
			WHERE n.nspname = $1 AND r.relname = $2 AND a.attname = $3`, schema, table, c.name).Scan(&typ)
		if err != nil || typ != c.dstType {
			t.Errorf("PostgreSQL column %s: type %q (%v), want %q", c.name, typ, err, c.dstType)
		}
	}
}

// checkMySQLTypes checks the destination's column types at MySQL.
func checkMySQLTypes(t *testing.T, db *sql.DB, schema, table string, cols []xcol) {
	t.Helper()
	for _, c := range cols {
		if c.dstType == "" {
			continue
		}
		var typ string
		err := db.QueryRow(`SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?`, schema, table, c.name).Scan(&typ)
		if err != nil || typ != c.dstType {
			t.Errorf("MySQL column %s: type %q (%v), want %q", c.name, typ, err, c.dstType)
		}
	}
}

// MySQL to PostgreSQL.

// myAllTypes has a column of every MySQL type ferry maps, edge values, a row
// of NULLs and generated rows. Its TIMESTAMP values are written in a
// +05:30 session, so a zone mix-up shows.
const myAllTypes = `
SET time_zone = '+05:30';
CREATE TABLE alltypes (
	id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
	b1 tinyint(1), bo bool,
	ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
	mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
	d65 decimal(65,30), d102 decimal(10,2),
	f float, dbl double,
	c char(10), vc varchar(100), tx text, mt mediumtext,
	bn binary(6), vb varbinary(20), bl blob,
	j json,
	e enum('small','medium','large','x 😀'),
	st set('a','b','c','d'),
	dt date, tm time(6), dtm datetime(6), ts timestamp(6) NULL DEFAULT NULL,
	yr year, bt bit(10), b64 bit(64)
) CHARACTER SET utf8mb4;
INSERT INTO alltypes (b1,bo,ti,tiu,si,siu,mi,miu,i,iu,bi,biu,d65,d102,f,dbl,c,vc,tx,mt,bn,vb,bl,j,e,st,dt,tm,dtm,ts,yr,bt,b64) VALUES
	(1, 0, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
	 '12345678901234567890123456789012345.123456789012345678901234567891', -99999999.99, 3.4028234663852886e38, -1.7976931348623157e308,
	 'abc', 'emoji 😀 é ''q'' \\ "d"', REPEAT('long text ', 100), 'tab	and
newline', X'000102000000', X'00', X'00ff00', '{"b": [1, 2.50, "é"], "a": null}',
	 'x 😀', 'a,d', '0001-01-01', '23:59:59.999999', '9999-12-31 23:59:59.999999', '2038-01-19 08:44:07.999999', 2155,
	 b'1010101010', b'1111111111111111111111111111111111111111111111111111111111111111'),
	(0, 1, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0,
	 '-0.000000000000000000000000000001', 0, 1.17549435e-38, 5e-324,
	 '', '', '', '  ', X'000000000000', X'', X'', '[]',
	 'small', '', '1970-01-01', '00:00:00', '1000-01-01 00:00:00', '1970-01-01 05:30:01', 1901, b'0', b'0'),
	(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO alltypes (b1,bo,ti,tiu,si,siu,mi,miu,i,iu,bi,biu,d65,d102,f,dbl,c,vc,tx,mt,bn,vb,bl,j,e,st,dt,tm,dtm,ts,yr,bt,b64)
SELECT s %% 2, s %% 3 = 0, s %% 100 - 50, s %% 256, s - 1000, s, s * 100, s * 3, s * 1000, s * 7, s * 1000000007, 18446744073709551615 - s,
	s / 7, s * 1.25, s / 3, s / 7,
	CONCAT('c', s), CONCAT('row ', s, IF(s %% 5 = 0, ' 😀', '')), IF(s %% 4 = 0, NULL, REPEAT('t', s %% 300)), CONCAT('m', s),
	UNHEX(LPAD(HEX(s), 12, '0')), UNHEX(HEX(s * 31)), IF(s %% 6 = 0, NULL, UNHEX(CONCAT('00', HEX(s)))),
	JSON_OBJECT('n', s, 'f', s / 4, 's', CONCAT('é', s)),
	ELT(1 + s %% 4, 'small', 'medium', 'large', 'x 😀'), ELT(1 + s %% 4, 'a', 'b,c', '', 'a,b,c,d'),
	'2000-01-01' + INTERVAL s DAY, SEC_TO_TIME(s * 17) + INTERVAL s MICROSECOND,
	'2020-02-29 12:00:00' + INTERVAL s * 61 SECOND + INTERVAL s MICROSECOND,
	'2024-03-10 01:59:00' + INTERVAL s MINUTE, 1901 + s %% 255, s %% 1024, s * 123456789
FROM (SELECT CAST(seq AS SIGNED) s FROM seq_1_to_%d) x;`

// myCols renders every column of myAllTypes at MySQL and at PostgreSQL.
var myCols = []xcol{
	{"b1", "CAST(b1 AS CHAR)", "b1::int::text", xText, "boolean"},
	{"bo", "CAST(bo AS CHAR)", "bo::int::text", xText, "boolean"},
	{"ti", "CAST(ti AS CHAR)", "ti::text", xText, "smallint"},
	{"tiu", "CAST(tiu AS CHAR)", "tiu::text", xText, "smallint"},
	{"si", "CAST(si AS CHAR)", "si::text", xText, "smallint"},
	{"siu", "CAST(siu AS CHAR)", "siu::text", xText, "integer"},
	{"mi", "CAST(mi AS CHAR)", "mi::text", xText, "integer"},
	{"miu", "CAST(miu AS CHAR)", "miu::text", xText, "integer"},
	{"i", "CAST(i AS CHAR)", "i::text", xText, "integer"},
	{"iu", "CAST(iu AS CHAR)", "iu::text", xText, "bigint"},
	{"bi", "CAST(bi AS CHAR)", "bi::text", xText, "bigint"},
	{"biu", "CAST(biu AS CHAR)", "biu::text", xText, "numeric(20,0)"},
	{"d65", "CAST(d65 AS CHAR)", "d65::text", xText, "numeric(65,30)"},
	{"d102", "CAST(d102 AS CHAR)", "d102::text", xText, "numeric(10,2)"},
	{"f", "f", "f", xFloat32, "real"},
	{"dbl", "dbl", "dbl", xFloat64, "double precision"},
	{"c", "c", "c", xText, "character varying(10)"},
	{"vc", "vc", "vc", xText, "character varying(100)"},
	{"tx", "tx", "tx", xText, "text"},
	{"mt", "mt", "mt", xText, "text"},
	{"bn", "LOWER(HEX(bn))", "encode(bn, 'hex')", xText, "bytea"},
	{"vb", "LOWER(HEX(vb))", "encode(vb, 'hex')", xText, "bytea"},
	{"bl", "LOWER(HEX(bl))", "encode(bl, 'hex')", xText, "bytea"},
	{"j", "j", "j::text", xJSON, ""},
	{"e", "e", "e::text", xText, ""},
	{"st", "st", "st", xText, "text"},
	{"dt", "DATE_FORMAT(dt, '%Y-%m-%d')", "to_char(dt, 'YYYY-MM-DD')", xText, "date"},
	{"tm", "TIME_FORMAT(tm, '%H:%i:%s.%f')", "to_char(tm, 'HH24:MI:SS.US')", xText, ""},
	{"dtm", "DATE_FORMAT(dtm, '%Y-%m-%d %H:%i:%s.%f')", "to_char(dtm, 'YYYY-MM-DD HH24:MI:SS.US')", xText, "timestamp without time zone"},
	{"ts", "DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')", "to_char(ts, 'YYYY-MM-DD HH24:MI:SS.US')", xText, "timestamp with time zone"},
	{"yr", "CAST(yr AS CHAR)", "yr::text", xText, "smallint"},
	{"bt", "LOWER(LPAD(HEX(bt), 4, '0'))", "encode(bt, 'hex')", xText, "bytea"},
	{"b64", "LOWER(LPAD(HEX(b64), 16, '0'))", "encode(b64, 'hex')", xText, "bytea"},
}

// myDSN is a DSN for the writer, whose session writes TIMESTAMPs at +05:30.
func myDSN(s *mysqltest.Server, db string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", "127.0.0.1:"+strconv.Itoa(s.Port), db
	cfg.Params = map[string]string{"charset": "utf8mb4", "time_zone": "'+05:30'"}
	return cfg.FormatDSN()
}

// xWriter changes a source until halted, one step at a time, counting the
// steps and those the database refused (a key move onto a taken key).
type xWriter struct {
	stop chan struct{}
	done chan struct{}
	ops  atomic.Int64
	errs atomic.Int64
	last atomic.Value
}

func (w *xWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *xWriter) run(t *testing.T, step func(r *rand.Rand) error) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if err := step(r); err != nil {
				w.errs.Add(1)
				w.last.Store(err.Error())
			}
			w.ops.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(w.halt)
}

func (w *xWriter) report(t *testing.T) {
	t.Helper()
	last, _ := w.last.Load().(string)
	t.Logf("writer: %d operations, %d refused by the database (last: %s)", w.ops.Load(), w.errs.Load(), last)
	if w.ops.Load() < 100 {
		t.Fatalf("the writer only managed %d operations; the test proves little", w.ops.Load())
	}
	if w.errs.Load() > w.ops.Load()/4 {
		t.Fatalf("the writer failed %d of %d operations (last: %s)", w.errs.Load(), w.ops.Load(), last)
	}
}

var xTexts = []string{"", " ", "plain", "emoji 😀🚀", "é ü ñ", "quote ' and \" and \\", "trailing  ", "line\nbreak\ttab"}

// startMyTypesWriter inserts, updates (also moving keys) and deletes
// alltypes rows at MySQL, some in multi-statement transactions.
func startMyTypesWriter(t *testing.T, s *mysqltest.Server, db string, maxID int) *xWriter {
	t.Helper()
	d, err := sql.Open("mysql", myDSN(s, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.SetMaxOpenConns(1)
	w := &xWriter{}
	pick := func(r *rand.Rand) string { return xTexts[r.IntN(len(xTexts))] }
	nullOr := func(r *rand.Rand, v any) any {
		if r.IntN(5) == 0 {
			return nil
		}
		return v
	}
	w.run(t, func(r *rand.Rand) error {
		id := 4 + r.IntN(maxID-3) // rows 1-3 keep their edge values and NULLs
		switch r.IntN(10) {
		case 0, 1, 2:
			_, err := d.Exec(`INSERT INTO alltypes (b1,bo,ti,tiu,si,siu,mi,miu,i,iu,bi,biu,d65,d102,f,dbl,c,vc,tx,mt,bn,vb,bl,j,e,st,dt,tm,dtm,ts,yr,bt,b64)
				VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NOW(6),?,?,?)`,
				nullOr(r, r.IntN(2)), r.IntN(2), r.IntN(256)-128, r.IntN(256), r.IntN(65536)-32768, r.IntN(65536),
				nullOr(r, r.IntN(1<<24)-1<<23), r.IntN(1<<24), r.Int32(), r.Uint32(), r.Int64()-r.Int64(), nullOr(r, strconv.FormatUint(r.Uint64(), 10)),
				fmt.Sprintf("%d.%030d", r.Int64N(1e17), r.Int64N(1e17)), nullOr(r, fmt.Sprintf("%d.%02d", r.IntN(1e8)-5e7, r.IntN(100))),
				nullOr(r, r.Float32()*1e6-5e5), nullOr(r, r.NormFloat64()*1e100),
				fmt.Sprintf("w%d", r.IntN(1e6)), pick(r), nullOr(r, strings.Repeat(pick(r), r.IntN(50))), pick(r),
				nullOr(r, []byte{0, byte(r.IntN(256)), 0}), []byte{byte(r.IntN(256)), 0}, nullOr(r, bytes.Repeat([]byte{0, 1, 255}, r.IntN(100))),
				nullOr(r, fmt.Sprintf(`{"k": %d, "t": %q, "a": [1.50, null, true]}`, r.IntN(1000), pick(r))),
				nullOr(r, []string{"small", "medium", "large", "x 😀"}[r.IntN(4)]), nullOr(r, []string{"", "a", "b,d", "a,b,c,d"}[r.IntN(4)]),
				nullOr(r, fmt.Sprintf("%04d-%02d-%02d", 1+r.IntN(9999), 1+r.IntN(12), 1+r.IntN(28))),
				nullOr(r, fmt.Sprintf("%02d:%02d:%02d.%06d", r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))),
				nullOr(r, fmt.Sprintf("%04d-%02d-%02d 12:34:56.%06d", 1000+r.IntN(9000), 1+r.IntN(12), 1+r.IntN(28), r.IntN(1e6))),
				nullOr(r, 1901+r.IntN(255)), nullOr(r, r.IntN(1024)), r.Uint64())
			return err
		case 3, 4, 5:
			_, err := d.Exec(`UPDATE alltypes SET f = ?, dbl = ?, j = JSON_SET(COALESCE(j, '{}'), '$.u', ?), e = ?, st = ?, ts = NOW(6),
				biu = ?, bl = ?, tm = ?, vc = CONCAT(COALESCE(vc, ''), ?), b1 = NOT COALESCE(b1, 0), bt = ? WHERE id = ?`,
				r.Float32(), nullOr(r, r.Float64()), r.IntN(100), nullOr(r, "large"), "c,a",
				nullOr(r, strconv.FormatUint(r.Uint64(), 10)), nullOr(r, []byte{0, 0, byte(r.IntN(256))}),
				nullOr(r, "24:00:00"), "😀", r.IntN(1024), id)
			return err
		case 6:
			_, err := d.Exec(`DELETE FROM alltypes WHERE id = ?`, id)
			return err
		case 7:
			// Moves a key: CDC deletes the old row and writes the new one.
			_, err := d.Exec(`UPDATE alltypes SET id = id + 1000000 WHERE id = ?`, id)
			return err
		case 8:
			_, err := d.Exec(`UPDATE alltypes SET tx = NULL, mt = CONCAT(COALESCE(mt, ''), 'x'), dtm = NOW(6) WHERE id BETWEEN ? AND ?`, id, id+20)
			return err
		default:
			tx, err := d.Begin()
			if err != nil {
				return err
			}
			if _, err = tx.Exec(`INSERT INTO alltypes (c, vc, bn, d65) VALUES ('tx', ?, X'00', -1.5)`, pick(r)); err == nil {
				if _, err = tx.Exec(`UPDATE alltypes SET d102 = d102 + 1, si = -si WHERE id = ?`, id); err == nil {
					_, err = tx.Exec(`DELETE FROM alltypes WHERE id = ?`, id+1)
				}
			}
			if err != nil {
				tx.Rollback() //nolint:errcheck // reporting err
				return err
			}
			return tx.Commit()
		}
	})
	return w
}

// TestCrossDBMySQLToPostgres copies every MySQL type into PostgreSQL while a
// writer changes the source, streams its changes, catches up, and checks the
// destination's column types, every value directly, and ferry verify.
func TestCrossDBMySQLToPostgres(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	src := mysqlDatabase(t, my, "x_my2pg")
	dst := pg.CreateDatabase(t, "x_my2pg")
	const rows = 5000
	my.Exec(t, "USE `"+src+"`; "+fmt.Sprintf(myAllTypes, rows))
	dir := t.TempDir()
	w := startMyTypesWriter(t, my, src, rows+3)
	args := []string{"sync", my.URL(src), pg.URL(dst), "--name", "x-my2pg", "--state-dir", dir, "--parallel", "3",
		"--partition-rows", "1000", "--batch-rows", "300", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	time.Sleep(1500 * time.Millisecond) // writes during CDC
	w.halt()
	if bg.hasExited() {
		t.Fatalf("ferry ended during CDC:\n%s", bg.stderr.String())
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if r.logLine("flow finished") == nil {
		t.Fatalf("no final line:\n%s", r)
	}
	w.report(t)
	checkPGTypes(t, pg, dst, src, "alltypes", myCols)
	compareX(t, myCols, readMySQLX(t, my.Connect(t, src), "alltypes", myCols),
		readPGX(t, pg, dst, pgx.Identifier{src, "alltypes"}.Sanitize(), myCols), "MySQL", "PostgreSQL")
	v := mustFerry(t, "verify", my.URL(src), pg.URL(dst))
	if !strings.Contains(v.stdout, "all 1 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// TestCrossDBMySQLToPostgresKillDuringCDC kills ferry with SIGKILL twice
// during CDC while the writer runs; the reruns lose and duplicate nothing.
func TestCrossDBMySQLToPostgresKillDuringCDC(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	src := mysqlDatabase(t, my, "x_kill")
	dst := pg.CreateDatabase(t, "x_kill")
	const rows = 3000
	my.Exec(t, "USE `"+src+"`; "+fmt.Sprintf(myAllTypes, rows))
	dir := t.TempDir()
	w := startMyTypesWriter(t, my, src, rows+3)
	args := []string{"sync", my.URL(src), pg.URL(dst), "--name", "x-kill", "--state-dir", dir, "--parallel", "2",
		"--partition-rows", "1000", "--batch-rows", "250", "--apply-batch", "200", "--log-format", "json", "--progress", "none"}
	for i, delay := range []time.Duration{700 * time.Millisecond, 1200 * time.Millisecond} {
		bg := startFerry(t, args...)
		if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
			t.Fatalf("run %d: CDC never started:\n%s", i, bg.stderr.String())
		}
		time.Sleep(delay)
		if !bg.kill(t) {
			t.Fatalf("run %d ended before the kill:\n%s", i, bg.stderr.String())
		}
		if i > 0 {
			// The rerun resumed the flow: no partition was copied again.
			r := result{stderr: bg.stderr.String()}
			if start := r.logLine("copy starting"); start != nil && start["pending"].(float64) != 0 {
				t.Fatalf("run %d copied again after a kill during CDC: %v", i, start)
			}
		}
	}
	w.halt()
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if fin := r.logLine("flow finished"); fin == nil || fin["rows_written"].(float64) != 0 {
		t.Fatalf("the final run copied rows again: %v", fin)
	}
	w.report(t)
	compareX(t, myCols, readMySQLX(t, my.Connect(t, src), "alltypes", myCols),
		readPGX(t, pg, dst, pgx.Identifier{src, "alltypes"}.Sanitize(), myCols), "MySQL", "PostgreSQL")
	v := mustFerry(t, "verify", my.URL(src), pg.URL(dst))
	if !strings.Contains(v.stdout, "all 1 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// PostgreSQL to MySQL.

// pgAllTypes has a column of every PostgreSQL type with a MySQL mapping,
// edge values, a row of NULLs and generated rows.
const pgAllTypes = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy 😀');
CREATE TABLE alltypes (
	id bigint PRIMARY KEY,
	sm smallint, i integer, bi bigint,
	num numeric(30,10), numu numeric,
	r real, dp double precision,
	bo boolean,
	tx text, vc varchar(50), ch char(6),
	by bytea,
	js json, jb jsonb,
	u uuid,
	d date, t time, ts timestamp, tstz timestamptz,
	iv interval,
	ai int[], at text[],
	en mood,
	ip inet, cd cidr, mac macaddr,
	big text
);
INSERT INTO alltypes VALUES
	(1, -32768, -2147483648, -9223372036854775808, '12345678901234567890.1234567891', '12345678901234567890123456789012345.123456789012345678901234567891',
	 3.4028235e38, 1.7976931348623157e308, true,
	 E'emoji 😀 é ''q'' \\ "d"\n\ttab', 'x', 'ab',
	 '\x000102', '{"b": [1, 2.50, "é"], "a": null}', '{"z": 1, "a": {"nested": [true, 1.0]}}',
	 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '0001-01-01', '24:00:00', '1000-01-01 00:00:00', '2024-03-10 02:30:00.000001-05',
	 '1 year 2 mons 3 days 04:05:06.789', '{1,NULL,-3}', '{"a\"b","😀",NULL,"x,y","","NULL"}', 'happy 😀',
	 '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i)),
	(2, 32767, 2147483647, 9223372036854775807, '-0.0000000001', '-0.000000000000000000000000000001',
	 1.17549435e-38, 5e-324, false,
	 '', '', '',
	 '\x', '[]', '"s"',
	 '00000000-0000-0000-0000-000000000000', '9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00',
	 '-1 mons +2 days -03:00:00.5', '{}', '{}', 'sad',
	 '2001:db8::1/64', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', ''),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO alltypes SELECT g, g %% 30000 - 15000, g * 1000, g::bigint * 1000000007, g / 7.0, g / 3.0,
	g / 3.0, g / 7.0, g %% 2 = 0,
	'row ' || g || CASE WHEN g %% 5 = 0 THEN ' 😀' ELSE '' END, 'v' || g, 'c' || (g %% 1000),
	decode(lpad(to_hex(g), 8, '0'), 'hex'), json_build_object('n', g, 'f', g / 4.0), jsonb_build_object('s', 'é' || g, 'l', jsonb_build_array(g, null)),
	md5(g::text)::uuid, '2000-01-01'::date + g, '00:00:00'::time + g * interval '17.000001 seconds',
	'2020-02-29 12:00:00'::timestamp + g * interval '61.000001 seconds', '2024-03-10 01:59:00+00'::timestamptz + g * interval '1 minute',
	make_interval(months => g %% 25, days => g %% 40, secs => g * 1.000001), ARRAY[g, g + 1], ARRAY['t' || g, NULL],
	(ARRAY['sad', 'ok', 'happy 😀'])[1 + g %% 3]::mood,
	('10.' || (g %% 250) || '.0.1')::inet, ('10.' || (g %% 250) || '.0.0/16')::cidr, ('08:00:2b:00:' || lpad(to_hex(g %% 256), 2, '0') || ':01')::macaddr,
	-- Out-of-line TOAST values: an update that leaves them alone sends them
	-- as unchanged, which the MySQL destination must keep.
	CASE WHEN g %% 40 = 0 THEN (SELECT string_agg(md5((g * i)::text), '') FROM generate_series(1, 300) i) END
	FROM generate_series(10, %d) g;
ANALYZE alltypes;`

// pgCols renders every column of pgAllTypes at MySQL and at PostgreSQL.
var pgCols = []xcol{
	{"sm", "CAST(sm AS CHAR)", "sm::text", xText, "smallint(6)"},
	{"i", "CAST(i AS CHAR)", "i::text", xText, "int(11)"},
	{"bi", "CAST(bi AS CHAR)", "bi::text", xText, "bigint(20)"},
	{"num", "CAST(num AS CHAR)", "num::text", xText, "decimal(30,10)"},
	{"numu", "CAST(numu AS CHAR)", "numu::text", xDecimal, "decimal(65,30)"},
	{"r", "r", "r", xFloat32, "float"},
	{"dp", "dp", "dp", xFloat64, "double"},
	{"bo", "CAST(bo AS CHAR)", "bo::int::text", xText, "tinyint(1)"},
	{"tx", "tx", "tx", xText, "longtext"},
	{"vc", "vc", "vc", xText, "varchar(50)"},
	{"ch", "ch", "ch", xText, "varchar(6)"},
	{"by", "LOWER(HEX(`by`))", `encode("by", 'hex')`, xText, "longblob"},
	{"js", "js", "js::text", xJSON, ""},
	{"jb", "jb", "jb::text", xJSON, ""},
	{"u", "u", "u::text", xText, "char(36)"},
	{"d", "DATE_FORMAT(d, '%Y-%m-%d')", "to_char(d, 'YYYY-MM-DD')", xText, "date"},
	{"t", "TIME_FORMAT(t, '%H:%i:%s.%f')", "to_char(t, 'HH24:MI:SS.US')", xText, "time(6)"},
	{"ts", "DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')", "to_char(ts, 'YYYY-MM-DD HH24:MI:SS.US')", xText, "datetime(6)"},
	{"tstz", "DATE_FORMAT(tstz, '%Y-%m-%d %H:%i:%s.%f')", "to_char(tstz, 'YYYY-MM-DD HH24:MI:SS.US')", xText, "datetime(6)"},
	{"iv", "iv", "CASE WHEN iv IS NOT NULL THEN format('%s|%s|%s', extract(year from iv)::int * 12 + extract(month from iv)::int, extract(day from iv)::int, (extract(epoch from iv - date_trunc('day', iv)) * 1000000)::bigint) END", xInterval, "varchar(64)"},
	{"ai", "ai", "array_to_json(ai)::text", xJSON, ""},
	{"at", "`at`", `array_to_json("at")::text`, xJSON, ""},
	{"en", "en", "en::text", xText, ""},
	{"ip", "ip", "CASE WHEN ip IS NOT NULL THEN format('%s', ip) END", xText, "varchar(43)"},
	{"cd", "cd", "CASE WHEN cd IS NOT NULL THEN format('%s', cd) END", xText, "varchar(43)"},
	{"mac", "mac", "CASE WHEN mac IS NOT NULL THEN format('%s', mac) END", xText, "varchar(23)"},
	{"big", "big", "big", xText, "longtext"},
}

// startPGTypesWriter does the same at PostgreSQL; some of its updates leave
// out-of-line TOAST values unchanged, also while moving a row's key.
func startPGTypesWriter(t *testing.T, srv *pgtest.Server, db string, firstNew int64) *xWriter {
	t.Helper()
	ctx := context.Background()
	conn := srv.Connect(t, db)
	w := &xWriter{}
	next := firstNew
	pick := func(r *rand.Rand) string { return xTexts[r.IntN(len(xTexts))] }
	nullOr := func(r *rand.Rand, v any) any {
		if r.IntN(5) == 0 {
			return nil
		}
		return v
	}
	w.run(t, func(r *rand.Rand) error {
		id := 4 + r.Int64N(next-4) // rows 1-3 keep their edge values and NULLs
		switch r.IntN(10) {
		case 0, 1, 2:
			next++
			_, err := conn.Exec(ctx, `INSERT INTO alltypes VALUES ($1, $2, $3, $4, $5::text::numeric, $6::text::numeric, $7, $8, $9, $10, $11, $12, $13, $14::text::json, $15::text::jsonb,
				gen_random_uuid(), $16::text::date, $17::text::time, $18::text::timestamp, now(), $19::text::interval, $20, $21,
				$22::text::mood, $23::text::inet, $24::text::cidr, $25::text::macaddr, $26)`,
				next, nullOr(r, int16(r.IntN(65536)-32768)), r.Int32(), nullOr(r, r.Int64()-r.Int64()),
				nullOr(r, fmt.Sprintf("%d.%010d", r.Int64N(1e18), r.Int64N(1e10))), nullOr(r, fmt.Sprintf("-%d.%d", r.Int64N(1e15), r.Int64N(1e15))),
				nullOr(r, r.Float32()*1e6), nullOr(r, r.NormFloat64()*1e-100), nullOr(r, r.IntN(2) == 0),
				nullOr(r, pick(r)), nullOr(r, pick(r)), nullOr(r, fmt.Sprintf("w%d", r.IntN(1000))),
				nullOr(r, bytes.Repeat([]byte{0, byte(r.IntN(256))}, r.IntN(20))), nullOr(r, fmt.Sprintf(`{"k": %d, "t": %q}`, r.IntN(99), pick(r))),
				nullOr(r, fmt.Sprintf(`[%d, {"x": %q}]`, r.IntN(99), pick(r))),
				nullOr(r, fmt.Sprintf("%04d-%02d-%02d", 1+r.IntN(9999), 1+r.IntN(12), 1+r.IntN(28))),
				nullOr(r, fmt.Sprintf("%02d:%02d:%02d.%06d", r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))),
				nullOr(r, fmt.Sprintf("%04d-%02d-%02d 01:02:03.%06d", 1000+r.IntN(9000), 1+r.IntN(12), 1+r.IntN(28), r.IntN(1e6))),
				nullOr(r, fmt.Sprintf("%d mons %d days %d.%06d seconds", r.IntN(200)-100, r.IntN(60)-30, r.IntN(1e6)-5e5, r.IntN(1e6))),
				nullOr(r, []int32{r.Int32(), 0}), nullOr(r, []string{pick(r), "😀"}), nullOr(r, []string{"sad", "ok", "happy 😀"}[r.IntN(3)]),
				nullOr(r, fmt.Sprintf("192.168.%d.%d", r.IntN(256), r.IntN(256))), nullOr(r, fmt.Sprintf("172.%d.0.0/16", 16+r.IntN(16))),
				nullOr(r, fmt.Sprintf("02:00:00:00:00:%02x", r.IntN(256))), nullOr(r, strings.Repeat(pick(r), r.IntN(3))))
			return err
		case 3, 4, 5:
			_, err := conn.Exec(ctx, `UPDATE alltypes SET r = $1, dp = $2, jb = coalesce(jb, '{}') || jsonb_build_object('u', $3::int),
				en = $4::text::mood, tstz = now(), ai = array_append(coalesce(ai, '{}'), $3::int), tx = coalesce(tx, '') || $5,
				iv = iv + interval '1 day 00:00:00.000001', "by" = $6, numu = coalesce(numu, 0) + 0.5 WHERE id = $7`,
				r.Float32(), nullOr(r, r.Float64()), r.IntN(100), nullOr(r, "ok"), "😀", nullOr(r, []byte{0, 0, byte(r.IntN(256))}), id)
			return err
		case 6:
			_, err := conn.Exec(ctx, `DELETE FROM alltypes WHERE id = $1`, id)
			return err
		case 7:
			// Moves a key.
			_, err := conn.Exec(ctx, `UPDATE alltypes SET id = id + 1000000 WHERE id = $1`, id)
			return err
		case 8:
			_, err := conn.Exec(ctx, `UPDATE alltypes SET t = NULL, ts = ts + interval '1 second', ch = 'u' WHERE id BETWEEN $1 AND $2`, id, id+20)
			return err
		default:
			tx, err := conn.Begin(ctx)
			if err != nil {
				return err
			}
			next++
			if _, err = tx.Exec(ctx, `INSERT INTO alltypes (id, vc, "by", num) VALUES ($1, $2, '\x00', -1.5)`, next, pick(r)); err == nil {
				if _, err = tx.Exec(ctx, `UPDATE alltypes SET sm = -sm, bo = NOT bo WHERE id = $1`, id); err == nil {
					_, err = tx.Exec(ctx, `DELETE FROM alltypes WHERE id = $1`, id+1)
				}
			}
			if err != nil {
				tx.Rollback(ctx) //nolint:errcheck // reporting err
				return err
			}
			return tx.Commit(ctx)
		}
	})
	return w
}

// TestCrossDBPostgresToMySQL is the way back: every PostgreSQL type with a
// MySQL mapping, with a writer during the copy and CDC; and the values MySQL
// cannot hold stop the flow with an error that names them.
func TestCrossDBPostgresToMySQL(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	src := pg.CreateDatabase(t, "x_pg2my")
	dst := mysqlDatabase(t, my, "x_pg2my")
	const rows = 5000
	pg.Exec(t, src, fmt.Sprintf(pgAllTypes, rows))
	t.Run("full flow", func(t *testing.T) {
		dir := t.TempDir()
		w := startPGTypesWriter(t, pg, src, rows+1)
		args := []string{"sync", pg.URL(src), my.URL(dst), "--name", "x-pg2my", "--state-dir", dir, "--parallel", "3",
			"--partition-rows", "1000", "--batch-rows", "300", "--tables", "public.alltypes", "--log-format", "json", "--progress", "none"}
		bg := startFerry(t, args...)
		if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
			t.Fatalf("CDC never started:\n%s", bg.stderr.String())
		}
		time.Sleep(1500 * time.Millisecond) // writes during CDC
		w.halt()
		if bg.hasExited() {
			t.Fatalf("ferry ended during CDC:\n%s", bg.stderr.String())
		}
		if code := bg.signal(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit code %d after SIGTERM:\n%s", code, bg.stderr.String())
		}
		r := mustFerry(t, append(args, "--until", "caught-up")...)
		if r.logLine("flow finished") == nil {
			t.Fatalf("no final line:\n%s", r)
		}
		w.report(t)
		checkMySQLTypes(t, my.Connect(t, dst), dst, "alltypes", pgCols)
		compareX(t, pgCols, readPGX(t, pg, src, "alltypes", pgCols), readMySQLX(t, my.Connect(t, dst), "alltypes", pgCols), "PostgreSQL", "MySQL")
		v := mustFerry(t, "verify", pg.URL(src), my.URL(dst), "--tables", "public.alltypes")
		if !strings.Contains(v.stdout, "all 1 table(s) equal") {
			t.Fatalf("verify: %s", v)
		}
	})
	// MySQL has no NaN or infinity: such a value stops the copy with an error
	// naming the table, the column and the value, and nothing is rounded.
	t.Run("NaN and infinity are refused", func(t *testing.T) {
		pg.Exec(t, src, `CREATE TABLE nan_real (id int PRIMARY KEY, v real); INSERT INTO nan_real VALUES (1, 1.5), (2, 'NaN');
			CREATE TABLE inf_double (id int PRIMARY KEY, v double precision); INSERT INTO inf_double VALUES (1, '-Infinity');
			CREATE TABLE nan_numeric (id int PRIMARY KEY, v numeric); INSERT INTO nan_numeric VALUES (1, 'NaN');
			CREATE TABLE inf_numeric (id int PRIMARY KEY, v numeric); INSERT INTO inf_numeric VALUES (1, '-Infinity');
			CREATE TABLE inf_date (id int PRIMARY KEY, v date); INSERT INTO inf_date VALUES (1, '2024-01-01'), (3, 'infinity');
			CREATE TABLE inf_ts (id int PRIMARY KEY, v timestamptz); INSERT INTO inf_ts VALUES (4, '-infinity')`)
		for _, c := range []struct{ table, value, key string }{{"nan_real", "NaN", "key (id=2)"}, {"inf_double", "-Inf", "key (id=1)"},
			{"nan_numeric", "NaN", "key (id=1)"}, {"inf_numeric", "-Infinity", "key (id=1)"},
			{"inf_date", "infinity: MySQL dates and timestamps have no infinity", "key (id=3)"},
			{"inf_ts", "-infinity: MySQL dates and timestamps have no infinity", "key (id=4)"}} {
			t.Run(c.table, func(t *testing.T) {
				r := ferry(t, "sync", pg.URL(src), my.URL(dst), "--state-dir", t.TempDir(), "--tables", "public."+c.table, "--mode", "snapshot")
				if r.code != 1 {
					t.Fatalf("want exit 1, got %s", r)
				}
				for _, want := range []string{c.table, "column v", c.key, c.value, "MySQL"} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
					}
				}
			})
		}
	})
}
