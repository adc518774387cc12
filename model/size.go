package model

// valueOverhead is what any value costs besides its contents: the interface
// holding it and the small allocation behind it.
const valueOverhead = 16

// ValueSize approximates the memory a canonical value holds, in bytes: the
// length of a string or byte slice (or an array's elements) plus a small
// overhead. Pipelines bound their batches by it, so a handful of large
// values weighs what it holds rather than counting as a handful of rows.
func ValueSize(v any) int64 {
	switch x := v.(type) {
	case string:
		return valueOverhead + int64(len(x))
	case []byte:
		return valueOverhead + int64(len(x))
	case []any:
		n := int64(valueOverhead)
		for _, e := range x {
			n += ValueSize(e)
		}
		return n
	}
	return valueOverhead
}

// Size approximates the memory the row's values hold, in bytes (ValueSize
// of each).
func (r Row) Size() int64 {
	var n int64
	for _, v := range r {
		n += ValueSize(v)
	}
	return n
}
