package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var (
	_ connector.RowHasher   = (*Conn)(nil)
	_ connector.TotalHasher = (*Conn)(nil)
)

// HashFamily: rows are hashed as the server's QUOTE() text of each column
// in UTC. MySQL and MariaDB spell some values apart (JSON, floats), so
// each is its own family.
func (c *Conn) HashFamily() string {
	if c.server.mariadb {
		return "mariadb"
	}
	return "mysql"
}

// hashedRows is the query of each row's key text, bucket and MD5 of its
// canonical text: QUOTE() writes NULL unquoted, so it differs from 'NULL'.
func hashedRows(t *model.Table, cols, key []string, n int, colHashes bool) string {
	vals := make([]string, len(cols))
	for i, col := range cols {
		vals[i] = "CAST(QUOTE(" + quoteIdent(col) + ") AS BINARY)" // bytes: no collations to mix
	}
	keys := make([]string, len(key))
	for i, k := range key {
		keys[i] = "CAST(CONCAT(" + quoteString(k+"=") + ", COALESCE(CAST(" + quoteIdent(k) + " AS CHAR), 'NULL')) AS BINARY)"
	}
	outer, inner := "", ""
	if colHashes {
		hs := make([]string, len(cols))
		for i, v := range vals {
			hs[i] = "SUBSTRING(MD5(" + v + "), 1, 16)"
		}
		outer, inner = ", ch", ", CONCAT_WS(',', "+strings.Join(hs, ", ")+") AS ch"
	}
	return fmt.Sprintf("SELECT k, CAST(CONV(SUBSTRING(MD5(k), 1, 7), 16, 10) AS UNSIGNED) %% %d AS b, h%s FROM ("+
		"SELECT CONCAT_WS(', ', %s) AS k, MD5(CONCAT_WS(',', %s)) AS h%s FROM %s) r",
		n, outer, strings.Join(keys, ", "), strings.Join(vals, ", "), inner, quoteName(t.Namespace))
}

// hashRead runs fn on one connection set to UTC, and gives the connection
// back with its time zone as it was.
func (c *Conn) hashRead(ctx context.Context, t *model.Table, fn func(*sql.Conn) error) error {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("hash %s: %w", t.Namespace, c.scrubber.Err(err))
	}
	defer conn.Close()
	var tz string
	if err := conn.QueryRowContext(ctx, "SELECT @@session.time_zone").Scan(&tz); err != nil {
		return fmt.Errorf("hash %s: %w", t.Namespace, c.scrubber.Err(err))
	}
	if _, err := conn.ExecContext(ctx, "SET time_zone = '+00:00'"); err != nil {
		return fmt.Errorf("hash %s: %w", t.Namespace, c.scrubber.Err(err))
	}
	ferr := fn(conn)
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SET time_zone = "+quoteString(tz)); err != nil && ferr == nil {
		ferr = fmt.Errorf("hash %s: restore the time zone: %w", t.Namespace, c.scrubber.Err(err))
	}
	return ferr
}

func bucketList(buckets []int) string {
	s := make([]string, len(buckets))
	for i, b := range buckets {
		s[i] = strconv.Itoa(b)
	}
	return strings.Join(s, ", ")
}

// HashBuckets sums each bucket's row hashes inside the database.
func (c *Conn) HashBuckets(ctx context.Context, t *model.Table, cols, key []string, n, lo, hi int) ([]connector.BucketHash, error) {
	out := make([]connector.BucketHash, n)
	q := "SELECT b, COUNT(*), CAST(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)) AS CHAR), " +
		"CAST(SUM(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)) AS CHAR) FROM (" + hashedRows(t, cols, key, n, false) + ") s WHERE b >= ? AND b < ? GROUP BY b"
	err := c.hashRead(ctx, t, func(conn *sql.Conn) error {
		rows, err := conn.QueryContext(ctx, q, lo, hi)
		if err != nil {
			return fmt.Errorf("hash the rows of %s: %w", t.Namespace, c.scrubber.Err(err))
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
		return c.scrubber.Err(rows.Err())
	})
	return out, err
}

// HashTotal sums the row hashes of buckets [lo, hi) in one total, without
// grouping them by bucket.
func (c *Conn) HashTotal(ctx context.Context, t *model.Table, cols, key []string, n, lo, hi int) (connector.BucketHash, error) {
	var out connector.BucketHash
	q := "SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR), " +
		"CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM (" + hashedRows(t, cols, key, n, false) + ") s"
	var args []any
	if lo > 0 || hi < n {
		q += " WHERE b >= ? AND b < ?"
		args = []any{lo, hi}
	}
	err := c.hashRead(ctx, t, func(conn *sql.Conn) error {
		var s1, s2 string
		if err := conn.QueryRowContext(ctx, q, args...).Scan(&out.Rows, &s1, &s2); err != nil {
			return fmt.Errorf("hash the rows of %s: %w", t.Namespace, c.scrubber.Err(err))
		}
		out.Sum1, out.Sum2 = mod64(s1), mod64(s2)
		return nil
	})
	return out, err
}

// HashKeys lists the key and hash of every row of the given buckets.
func (c *Conn) HashKeys(ctx context.Context, t *model.Table, cols, key []string, n int, buckets []int) ([]connector.KeyHash, error) {
	var out []connector.KeyHash
	if len(buckets) == 0 {
		return nil, nil
	}
	q := "SELECT b, k, CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED) FROM (" + hashedRows(t, cols, key, n, false) + ") s WHERE b IN (" + bucketList(buckets) + ")"
	err := c.hashRead(ctx, t, func(conn *sql.Conn) error {
		rows, err := conn.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("hash the rows of %s: %w", t.Namespace, c.scrubber.Err(err))
		}
		defer rows.Close()
		for rows.Next() {
			var kh connector.KeyHash
			if err := rows.Scan(&kh.Bucket, &kh.Key, &kh.Hash); err != nil {
				return err
			}
			out = append(out, kh)
		}
		return c.scrubber.Err(rows.Err())
	})
	return out, err
}

// HashColumns hashes each column of the given keys' rows.
func (c *Conn) HashColumns(ctx context.Context, t *model.Table, cols, key []string, n int, buckets []int, keys []string) (map[string][]uint64, error) {
	out := map[string][]uint64{}
	if len(buckets) == 0 || len(keys) == 0 {
		return out, nil
	}
	args := make([]any, len(keys))
	marks := make([]string, len(keys))
	for i, k := range keys {
		args[i], marks[i] = k, "?"
	}
	q := "SELECT k, ch FROM (" + hashedRows(t, cols, key, n, true) + ") s WHERE b IN (" + bucketList(buckets) + ") AND k IN (" + strings.Join(marks, ", ") + ")"
	err := c.hashRead(ctx, t, func(conn *sql.Conn) error {
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("hash the columns of %s: %w", t.Namespace, c.scrubber.Err(err))
		}
		defer rows.Close()
		for rows.Next() {
			var k, ch string
			if err := rows.Scan(&k, &ch); err != nil {
				return err
			}
			var hs []uint64
			for _, x := range strings.Split(ch, ",") {
				h, err := strconv.ParseUint(x, 16, 64)
				if err != nil {
					return fmt.Errorf("hash the columns of %s: %q: %w", t.Namespace, x, err)
				}
				hs = append(hs, h)
			}
			out[k] = hs
		}
		return c.scrubber.Err(rows.Err())
	})
	return out, err
}

var two64 = new(big.Int).Lsh(big.NewInt(1), 64)

// mod64 is a decimal sum modulo 2^64.
func mod64(s string) uint64 {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return 0
	}
	return v.Mod(v, two64).Uint64()
}
