package verify

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// useKeyReaders lets each side that can read rows by key do so when a
// re-check asks for a few keys, instead of scanning its table: for a table
// with a primary key whose columns hold the same kind of value (integers,
// text) on both sides, so the source's key values look the row up at the
// destination too.
func useKeyReaders(src, dst *side, st, dt *model.Table) {
	idx := st.KeyIndexes()
	if len(idx) == 0 {
		return
	}
	var srcCols, dstCols []string
	for _, i := range idx {
		a, b := st.Columns[i], dt.Columns[dst.proj[i]]
		if lookupGroup(a.Type) == 0 || lookupGroup(a.Type) != lookupGroup(b.Type) {
			return
		}
		srcCols, dstCols = append(srcCols, a.Name), append(dstCols, b.Name)
	}
	src.keyReader, src.keyCols = connector.Discover(src.src).KeyReader, srcCols
	dst.keyReader, dst.keyCols = connector.Discover(dst.src).KeyReader, dstCols
}

// lookupGroup is 1 for integer kinds (int64 values), 2 for text kinds
// (string values), 0 for a kind not looked up by value.
func lookupGroup(t model.Type) int {
	switch t.Kind {
	case model.KindInt16, model.KindInt32, model.KindInt64:
		return 1
	case model.KindText, model.KindUUID:
		if t.Elem == nil && len(t.EnumValues) == 0 {
			return 2
		}
	}
	return 0
}

// keyValues are row's key values (row in the source's order and types);
// nil when there is no row or the key is not looked up by value.
func (s *side) keyValues(row model.Row) model.Row {
	if row == nil || s.keyCols == nil {
		return nil
	}
	out := make(model.Row, len(s.keyIdx))
	for i, j := range s.keyIdx {
		out[i] = row[j]
	}
	return out
}

// canLookUp tells whether the side reads only the keys asked for: it can
// read by key and every key's values are known.
func (s *side) canLookUp(only map[string]model.Row) bool {
	if s.keyReader == nil || only == nil {
		return false
	}
	for _, kv := range only {
		if kv == nil {
			return false
		}
	}
	return true
}

// lookUp reads the rows of the keys in only, and nothing else.
func (s *side) lookUp(ctx context.Context, n int, only map[string]model.Row) (map[string]rowInfo, error) {
	keys := make([]model.Row, 0, len(only))
	for _, kv := range only {
		keys = append(keys, kv)
	}
	out := map[string]rowInfo{}
	var mu sync.Mutex
	var key, enc []byte
	err := s.keyReader.ReadKeys(ctx, s.table, s.keyCols, keys, func(b *model.RowBatch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, raw := range b.Rows {
			row, k, e, err := s.convert(raw, key[:0], enc[:0])
			if err != nil {
				return err
			}
			key, enc = k, e
			if _, ok := only[string(key)]; !ok {
				continue // the database matched a key ferry spells otherwise
			}
			ri, ok := out[string(key)]
			if !ok {
				ri = rowInfo{bucket: bucketOf(key, n), text: keyText(s.srcCols, s.keyIdx, row), hash: maphash.Bytes(seed1, enc), row: row}
			}
			ri.count++
			out[string(key)] = ri
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %d key(s): %w", len(keys), err)
	}
	return out, nil
}
