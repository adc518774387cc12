package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// Key-range partitions, for servers without TID range scans (before
// PostgreSQL 14), where a block-range partition would scan the whole table
// to read its blocks: each partition is a range of the primary key's first
// column, read in key order through the key's index, and its cursor is the
// last row's whole key. Bounds are "key=<JSON string>" (the value's text);
// cursors "key=<JSON array>" of the key columns' text.
const keyPrefix = "key="

// isKeyPartition tells a key-range partition from a block-range one.
func isKeyPartition(p model.Partition) bool {
	return strings.HasPrefix(p.Lower, keyPrefix) || strings.HasPrefix(p.Upper, keyPrefix)
}

// keyPartitions replaces a table's block-range partitions by as many ranges
// of its primary key's first column, cut at the key's quantiles. A table
// without a primary key, or whose first key column has too few values,
// keeps fewer (at least one) partitions.
func (c *Conn) keyRangePartitions(ctx context.Context, s *srcTable, blocks []model.Partition) ([]model.Partition, error) {
	n := len(blocks)
	var rows, bytes int64
	for _, p := range blocks {
		rows += p.EstimatedRows
		bytes += p.EstimatedBytes
	}
	fractions := make([]string, n-1)
	for i := range fractions {
		fractions[i] = fmt.Sprintf("%g", float64(i+1)/float64(n))
	}
	k := quoteIdent(s.table.PrimaryKey[0])
	var bounds []*string
	err := c.pool.QueryRow(ctx, "SELECT percentile_disc(ARRAY["+strings.Join(fractions, ",")+"]::float8[]) WITHIN GROUP (ORDER BY "+k+")::text[] FROM ONLY "+qualified(s.table.Namespace)).Scan(&bounds)
	if err != nil {
		return nil, c.classify(err, "choose key ranges of "+s.table.Namespace.String())
	}
	var cuts []string
	for _, b := range bounds {
		if b != nil && (len(cuts) == 0 || cuts[len(cuts)-1] != *b) {
			cuts = append(cuts, *b)
		}
	}
	parts := make([]model.Partition, len(cuts)+1)
	for i := range parts {
		p := model.Partition{ID: fmt.Sprintf("%s/%04d", s.table.Namespace, i), Table: s.table.Namespace, Index: i,
			EstimatedRows: rows / int64(len(parts)), EstimatedBytes: bytes / int64(len(parts))}
		if i > 0 {
			p.Lower = encodeKeyBound(cuts[i-1])
		}
		if i < len(cuts) {
			p.Upper = encodeKeyBound(cuts[i])
		}
		parts[i] = p
	}
	return parts, nil
}

func encodeKeyBound(v string) string {
	b, _ := json.Marshal(v) //nolint:errchkjson // a string always marshals
	return keyPrefix + string(b)
}

func decodeKeyBound(s string) (string, error) {
	var v string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(s, keyPrefix)), &v); err != nil {
		return "", fmt.Errorf("invalid key bound %q", s)
	}
	return v, nil
}

// keyRangeQuery selects a key-range partition's columns after the cursor, in
// key order, with the key's text as a JSON array last (the next cursor).
func keyRangeQuery(t *model.Table, p model.Partition, from model.Cursor) (string, error) {
	if len(t.PrimaryKey) == 0 {
		return "", fmt.Errorf("partition %s: a key-range partition of %s, which has no primary key", p.ID, t.Namespace)
	}
	keys := quoteIdents(t.PrimaryKey)
	var conds []string
	if p.Lower != "" {
		lo, err := decodeKeyBound(p.Lower)
		if err != nil {
			return "", fmt.Errorf("partition %s: %w", p.ID, err)
		}
		conds = append(conds, keys[0]+" >= "+quoteLiteral(lo))
	}
	if p.Upper != "" {
		hi, err := decodeKeyBound(p.Upper)
		if err != nil {
			return "", fmt.Errorf("partition %s: %w", p.ID, err)
		}
		conds = append(conds, keys[0]+" < "+quoteLiteral(hi))
	}
	if from != "" {
		var last []string
		if !strings.HasPrefix(string(from), keyPrefix) || json.Unmarshal([]byte(strings.TrimPrefix(string(from), keyPrefix)), &last) != nil || len(last) != len(keys) {
			return "", fmt.Errorf("partition %s: invalid key cursor %q", p.ID, from)
		}
		lits := make([]string, len(last))
		for i, v := range last {
			lits[i] = quoteLiteral(v)
		}
		conds = append(conds, "("+strings.Join(keys, ", ")+") > ("+strings.Join(lits, ", ")+")")
	}
	cols := make([]string, 0, len(t.Columns)+1)
	for _, col := range t.Columns {
		cols = append(cols, quoteIdent(col.Name))
	}
	texts := make([]string, len(keys))
	for i, k := range keys {
		texts[i] = k + "::text"
	}
	cols = append(cols, "json_build_array("+strings.Join(texts, ", ")+")::text")
	q := "SELECT " + strings.Join(cols, ", ") + " FROM ONLY " + qualified(t.Namespace)
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + " ORDER BY " + strings.Join(keys, ", "), nil
}
