package postgres

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var (
	_ connector.RowHasher   = (*Conn)(nil)
	_ connector.TotalHasher = (*Conn)(nil)
)

// HashFamily: rows are hashed as PostgreSQL's text of each column, under
// the session settings hashSettings fixes. PostgreSQL 14 and later hash a
// row by its columns' own hashes (hash_record_extended), older servers by
// its text: two families, so a comparison across them reads the rows.
func (c *Conn) HashFamily() string {
	if c.major >= 14 {
		return "postgres"
	}
	return "postgres-text"
}

// hashSettings make every column's text the same on any server: time
// zone, date and interval styles, float digits and bytea's form.
var hashSettings = []string{
	`SET LOCAL TimeZone = 'UTC'`, `SET LOCAL DateStyle = 'ISO, YMD'`, `SET LOCAL IntervalStyle = 'postgres'`,
	`SET LOCAL extra_float_digits = 1`, `SET LOCAL bytea_output = 'hex'`,
}

// hashQuery says what hashedRows selects besides b, h1 and h2: the key's
// text k (HashKeys and HashColumns need it, the bucket sums do not: it is
// an output function and a concatenation per row) and the column hashes
// ch (HashColumns).
type hashQuery struct {
	withKey   bool
	colHashes string
}

// hashedRows is the query of each row's bucket b and two 64-bit hashes of
// the row whose sums a bucket adds up: h1, and on PostgreSQL 14 and later
// h2 a hash of h1 (a second sum for the price of hashing one integer,
// where hashing the row twice cost as much again); with q.withKey the
// key's text k too. On PostgreSQL 14 and later the row is hashed by
// hash_record_extended, each column by its type's own hash (no text is
// made: about twice as fast as hashing the row's text, measured on a
// million narrow rows), except the columns whose hash is not exact or not
// the same in two databases (hashColumn), which go in as text; the bucket
// is a hash of the key: of the one integer column itself when the key is
// one, of h1 when the key is every column (a table without a key), else
// of the key's columns as a record. Before 14 the row's canonical text is
// hashed by hashtextextended, and the bucket by the key's text:
// quote_nullable tells NULL from the text 'NULL', and the comma between
// quoted values cannot be confused with one inside them. All are the
// hashes hash partitioning uses, stable across versions and platforms;
// both sides of a comparison are PostgreSQL of one HashFamily and run the
// same query, so the hashes need agree with nothing else. The OFFSET 0
// fences keep the planner from computing a hash once for each use.
func (c *Conn) hashedRows(t *model.Table, cols, key []string, n int, q hashQuery) string {
	keys := make([]string, len(key))
	for i, k := range key {
		keys[i] = quoteLiteral(k+"=") + " || coalesce(" + quoteIdent(k) + "::text, 'NULL')"
	}
	k, kIn := "", ""
	if q.withKey || c.major < 14 {
		k, kIn = "k, ", concatWS(", ", keys)+" AS k, "
	}
	ch, chIn := "", ""
	if q.colHashes != "" {
		ch, chIn = ", ch", ", "+q.colHashes+" AS ch"
	}
	if c.major >= 14 {
		keyHash, kh := "h1", ""
		switch {
		case slices.Equal(key, cols):
		case len(key) == 1 && isInteger(t, key[0]):
			keyHash, kh = "kh", "hashint8extended("+quoteIdent(key[0])+"::int8, 0) AS kh, "
		default:
			keyHash, kh = "kh", "hash_record_extended(ROW("+hashColumns(t, key)+"), 0) AS kh, "
		}
		return fmt.Sprintf(`SELECT %sb, h1, hashint8extended(h1, 1) AS h2%s FROM (
		SELECT %s((%s & 9223372036854775807) %% %d)::int AS b, h1%s FROM (
		SELECT %s%shash_record_extended(ROW(%s), 0) AS h1%s FROM %s OFFSET 0) r OFFSET 0) h`,
			k, ch, k, keyHash, n, ch, kIn, kh, hashColumns(t, cols), chIn, qualified(t.Namespace))
	}
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = "quote_nullable(" + quoteIdent(c) + "::text)"
	}
	return fmt.Sprintf(`SELECT k, ((hashtextextended(k, 0) & 9223372036854775807) %% %d)::int AS b,
		hashtextextended(r, 0) AS h1, hashtextextended(r, 1) AS h2%s FROM (
		SELECT %s%s AS r%s FROM %s) r`,
		n, ch, kIn, concatWS(",", vals), chIn, qualified(t.Namespace))
}

// isInteger tells whether t's column name is a 16-, 32- or 64-bit integer.
func isInteger(t *model.Table, name string) bool {
	j := t.ColumnIndex(name)
	if j < 0 {
		return false
	}
	switch t.Columns[j].Type.Kind {
	case model.KindInt16, model.KindInt32, model.KindInt64:
		return !t.Columns[j].Type.TextForm
	}
	return false
}

// hashColumns lists cols as hash_record_extended takes them (hashColumn).
func hashColumns(t *model.Table, cols []string) string {
	out := make([]string, len(cols))
	for i, name := range cols {
		var col *model.Column
		if j := t.ColumnIndex(name); j >= 0 {
			col = &t.Columns[j]
		}
		out[i] = hashColumn(name, col)
	}
	return strings.Join(out, ", ")
}

// hashColumn is a column as its own type's hash takes it where that hash
// is exact (equal hashes for equal values, and values that differ in text
// differ in value) and the same in any database; otherwise its text. Text
// is hashed under the "C" collation, whose equality is byte equality.
// Text it must be: floats (the hash makes -0 and 0 one), numeric without a
// scale (1.0 and 1.00), intervals ('1 day' and '24 hours'), enums (hashed
// by their OID, which differs between databases), json (no hash), arrays
// (of any of these), and the types ferry reads as text (TextForm).
// TestPostgresPushdownSeesEveryKindOfDifference holds each to it.
func hashColumn(name string, col *model.Column) string {
	q := quoteIdent(name)
	if col == nil || col.Type.TextForm {
		return q + "::text"
	}
	switch col.Type.Kind {
	case model.KindBool, model.KindInt16, model.KindInt32, model.KindInt64, model.KindDate, model.KindTime,
		model.KindTimestamp, model.KindTimestampTZ, model.KindUUID, model.KindBytes, model.KindInet, model.KindCIDR, model.KindMACAddr:
		return q
	case model.KindDecimal:
		if col.Type.Precision > 0 {
			return q
		}
	case model.KindText:
		return q + ` COLLATE "C"`
	case model.KindJSON:
		if strings.EqualFold(col.Type.Native, "jsonb") {
			return q
		}
	}
	return q + "::text"
}

// concatWS is concat_ws(sep, parts...) for any number of parts: a function
// takes at most 100 arguments, so a wide table's columns are joined in
// groups, then the groups (the parts are never NULL: quote_nullable and
// coalesce see to that, and concat_ws of a group is not NULL either).
func concatWS(sep string, parts []string) string {
	const most = 99 // and the separator
	if len(parts) <= most {
		return "concat_ws(" + quoteLiteral(sep) + ", " + strings.Join(parts, ", ") + ")"
	}
	var groups []string
	for len(parts) > 0 {
		k := min(most, len(parts))
		groups = append(groups, concatWS(sep, parts[:k]))
		parts = parts[k:]
	}
	return concatWS(sep, groups)
}

// hashRead runs fn in a read-only transaction under hashSettings.
func (c *Conn) hashRead(ctx context.Context, t *model.Table, fn func(tx pgx.Tx) error) error {
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return c.classify(err, "begin the hash of "+t.Namespace.String())
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only; nothing to keep
	for _, s := range hashSettings {
		if _, err := tx.Exec(ctx, s); err != nil {
			return c.classify(err, "hash "+t.Namespace.String())
		}
	}
	return fn(tx)
}

// HashBuckets sums each bucket's row hashes inside the database.
func (c *Conn) HashBuckets(ctx context.Context, t *model.Table, cols, key []string, n, lo, hi int) ([]connector.BucketHash, error) {
	out := make([]connector.BucketHash, n)
	q := `SELECT b, count(*), sum(h1)::text, sum(h2)::text
		FROM (` + c.hashedRows(t, cols, key, n, hashQuery{}) + `) s WHERE b >= $1 AND b < $2 GROUP BY b`
	err := c.hashRead(ctx, t, func(tx pgx.Tx) error {
		// The filter on b hides from the planner that every row is
		// grouped: it would sort them all by b (a third of the query's
		// time on narrow rows) where a hash of at most 4096 groups is
		// enough.
		if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
			return c.classify(err, "hash "+t.Namespace.String())
		}
		rows, err := tx.Query(ctx, q, lo, hi)
		if err != nil {
			return c.classify(err, "hash the rows of "+t.Namespace.String())
		}
		defer rows.Close()
		for rows.Next() {
			var b int
			var cnt int64
			var s1, s2 string
			if err := rows.Scan(&b, &cnt, &s1, &s2); err != nil {
				return err
			}
			if b < 0 || b >= n {
				return fmt.Errorf("hash of %s: bucket %d out of %d", t.Namespace, b, n)
			}
			out[b] = connector.BucketHash{Rows: cnt, Sum1: mod64(s1), Sum2: mod64(s2)}
		}
		return c.classify(rows.Err(), "hash the rows of "+t.Namespace.String())
	})
	return out, err
}

// HashTotal sums the row hashes of buckets [lo, hi) in one total: no
// grouping by bucket, and no bucket computed when the range is every
// bucket (the planner drops the fenced subquery's unused outputs).
func (c *Conn) HashTotal(ctx context.Context, t *model.Table, cols, key []string, n, lo, hi int) (connector.BucketHash, error) {
	var out connector.BucketHash
	q := `SELECT count(*), coalesce(sum(h1), 0)::text, coalesce(sum(h2), 0)::text FROM (` + c.hashedRows(t, cols, key, n, hashQuery{}) + `) s`
	var args []any
	if lo > 0 || hi < n {
		q += ` WHERE b >= $1 AND b < $2`
		args = []any{lo, hi}
	}
	err := c.hashRead(ctx, t, func(tx pgx.Tx) error {
		var s1, s2 string
		if err := tx.QueryRow(ctx, q, args...).Scan(&out.Rows, &s1, &s2); err != nil {
			return c.classify(err, "hash the rows of "+t.Namespace.String())
		}
		out.Sum1, out.Sum2 = mod64(s1), mod64(s2)
		return nil
	})
	return out, err
}

// HashKeys lists the key and hash of every row of the given buckets.
func (c *Conn) HashKeys(ctx context.Context, t *model.Table, cols, key []string, n int, buckets []int) ([]connector.KeyHash, error) {
	var out []connector.KeyHash
	q := `SELECT b, k, h1 FROM (` + c.hashedRows(t, cols, key, n, hashQuery{withKey: true}) + `) s WHERE b = ANY($1)`
	err := c.hashRead(ctx, t, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, buckets)
		if err != nil {
			return c.classify(err, "hash the rows of "+t.Namespace.String())
		}
		defer rows.Close()
		for rows.Next() {
			var kh connector.KeyHash
			var h int64
			if err := rows.Scan(&kh.Bucket, &kh.Key, &h); err != nil {
				return err
			}
			kh.Hash = uint64(h)
			out = append(out, kh)
		}
		return c.classify(rows.Err(), "hash the rows of "+t.Namespace.String())
	})
	return out, err
}

// HashColumns hashes each column of the given keys' rows.
func (c *Conn) HashColumns(ctx context.Context, t *model.Table, cols, key []string, n int, buckets []int, keys []string) (map[string][]uint64, error) {
	vals := make([]string, len(cols))
	for i, col := range cols {
		vals[i] = "hashtextextended(quote_nullable(" + quoteIdent(col) + "::text), 0)"
	}
	inner := c.hashedRows(t, cols, key, n, hashQuery{withKey: true, colHashes: "ARRAY[" + strings.Join(vals, ", ") + "]"})
	q := `SELECT k, ch FROM (` + inner + `) s WHERE b = ANY($1) AND k = ANY($2)`
	out := map[string][]uint64{}
	err := c.hashRead(ctx, t, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, buckets, keys)
		if err != nil {
			return c.classify(err, "hash the columns of "+t.Namespace.String())
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var hs []int64
			if err := rows.Scan(&k, &hs); err != nil {
				return err
			}
			u := make([]uint64, len(hs))
			for i, h := range hs {
				u[i] = uint64(h)
			}
			out[k] = u
		}
		return c.classify(rows.Err(), "hash the columns of "+t.Namespace.String())
	})
	return out, err
}

var two64 = new(big.Int).Lsh(big.NewInt(1), 64)

// mod64 is a decimal sum modulo 2^64 (0 for NULL's empty sum).
func mod64(s string) uint64 {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return 0
	}
	return v.Mod(v, two64).Uint64()
}
