package postgres

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// fillMoved gives the rows an update moved to a new key the values the
// source left out. Under the default replica identity pgoutput sends an
// unchanged TOAST value as "unchanged" also when the update changed the
// key, but no destination holds a row under the new key to keep the value
// from: ferry reads those columns from the source's current row under the
// new key. Every later change to the row is replayed after this one, so a
// newer value converges; a row no longer there (deleted or moved again
// since) becomes a delete of the old key, and its later changes complete
// it. Under REPLICA IDENTITY FULL the old row fills them already.
func (s *streamer) fillMoved(ctx context.Context) error {
	byTable := map[model.Namespace][]int{}
	for i := range s.changes {
		ch := &s.changes[i]
		if ch.Op != model.OpUpdate || ch.Key == nil || ch.Row == nil || !hasUnchanged(ch.Row) {
			continue
		}
		byTable[ch.Table] = append(byTable[ch.Table], i)
	}
	for ns, idx := range byTable {
		if err := s.fillMovedTable(ctx, s.tables[ns], idx); err != nil {
			return err
		}
	}
	return nil
}

func hasUnchanged(row model.Row) bool {
	for _, v := range row {
		if model.IsUnchanged(v) {
			return true
		}
	}
	return false
}

func (s *streamer) fillMovedTable(ctx context.Context, st *streamTable, idx []int) error {
	t := st.table
	keyIdx := t.KeyIndexes()
	// A key column left unchanged keeps its old value; the other columns
	// to read are those some row left unchanged (generated ones are
	// computed afterwards from the filled values).
	need := map[int]bool{}
	for _, i := range idx {
		ch := &s.changes[i]
		for j, ci := range keyIdx {
			if model.IsUnchanged(ch.Row[ci]) {
				ch.Row[ci] = ch.Key[j]
			}
		}
		for ci, v := range ch.Row {
			if model.IsUnchanged(v) && !t.Columns[ci].Generated {
				need[ci] = true
			}
		}
	}
	cols := make([]int, 0, len(need))
	for ci := range need {
		cols = append(cols, ci)
	}
	sort.Ints(cols)
	sel := make([]string, 0, len(keyIdx)+len(cols))
	for _, ci := range append(append([]int(nil), keyIdx...), cols...) {
		sel = append(sel, quoteIdent(t.Columns[ci].Name))
	}
	keyList := strings.Join(sel[:len(keyIdx)], ", ")
	const chunkRows = 1000
	for start := 0; start < len(idx); start += chunkRows {
		chunk := idx[start:min(start+chunkRows, len(idx))]
		var params [][]byte
		tuples := make([]string, 0, len(chunk))
		for _, i := range chunk {
			ph := make([]string, len(keyIdx))
			for j, ci := range keyIdx {
				col := t.Columns[ci]
				txt, err := appendText(nil, col.Type, s.changes[i].Row[ci])
				if err != nil {
					return fmt.Errorf("table %s, key column %s: %w", t.Namespace, col.Name, err)
				}
				params = append(params, txt)
				ph[j] = "$" + strconv.Itoa(len(params)) + "::" + col.Type.Native
			}
			tuples = append(tuples, "("+strings.Join(ph, ", ")+")")
		}
		q := "SELECT " + strings.Join(sel, ", ") + " FROM " + qualified(t.Namespace) + " WHERE (" + keyList + ") IN (" + strings.Join(tuples, ", ") + ")"
		res, err := s.c.queryText(ctx, q, params)
		if err != nil {
			return s.c.classify(err, "read the values of rows moved to a new key in "+t.Namespace.String())
		}
		found := make(map[string][]*string, len(res))
		for _, r := range res {
			key := make(model.Row, len(t.Columns))
			for j, ci := range keyIdx {
				if r[j] == nil {
					return fmt.Errorf("table %s: NULL in key column %s", t.Namespace, t.Columns[ci].Name)
				}
				v, err := st.decs[ci](*r[j])
				if err != nil {
					return &decodeError{fmt.Errorf("table %s, key column %s: %w", t.Namespace, t.Columns[ci].Name, err)}
				}
				key[ci] = v
			}
			k, err := model.KeyOf(nil, t.Columns, keyIdx, key)
			if err != nil {
				return err
			}
			found[string(k)] = r[len(keyIdx):]
		}
		for _, i := range chunk {
			ch := &s.changes[i]
			k, err := model.KeyOf(nil, t.Columns, keyIdx, ch.Row)
			if err != nil {
				return err
			}
			vals, ok := found[string(k)]
			if !ok {
				ch.Op, ch.Row = model.OpDelete, nil
				s.rawRows[i] = nil
				continue
			}
			raw := s.rawRows[i]
			for n, ci := range cols {
				if !model.IsUnchanged(ch.Row[ci]) {
					continue
				}
				if raw != nil {
					raw[ci] = vals[n]
				}
				if vals[n] == nil {
					ch.Row[ci] = nil
					continue
				}
				v, err := st.decs[ci](*vals[n])
				if err != nil {
					return &decodeError{fmt.Errorf("table %s, column %s: %w", t.Namespace, t.Columns[ci].Name, err)}
				}
				ch.Row[ci] = v
			}
		}
	}
	return nil
}
