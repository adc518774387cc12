package model

import (
	"time"
	"unsafe"
)

// Slab hands out rows and boxed values (an int64, a float64, a string, a
// time.Time or a []byte in a Row's `any`) from a few large allocations
// instead of one allocation per value.
//
// Putting an int64 in an `any` makes Go allocate 8 bytes for it (a string,
// 16; a time.Time, 24), and a row of a dozen columns makes a dozen such
// allocations: that, and the garbage collector's work on them, was most of
// the time of reading rows that need no conversion (the fake source into
// null spent 57 % of its CPU in the allocator). A Slab stores the values in
// arrays of their own type, a few hundred at a time, and makes each `any`
// point into its array: one allocation for many values.
//
// A value taken from a Slab is an ordinary value: it compares, type-switches
// and prints like any other, and it is never changed or reused: a full array
// is left to the garbage collector, which frees it once no value in it is
// referenced any more (a value kept long keeps its array alive: a few KB).
// A Slab itself is not safe for concurrent use: one per reader.
type Slab struct {
	anys   []any
	ints   []int64
	floats []float64
	strs   []string
	times  []time.Time
	blobs  [][]byte
	bytes  []byte
}

// slabValues is how many values of a type each of a Slab's arrays holds.
const slabValues = 512

// slabBytes is the size of the array byte values are copied into; a value
// larger than a quarter of it gets an allocation of its own.
const slabBytes = 16 << 10

// eface is the layout of an `any`: its type and a pointer to its value.
// Go has kept it since 1.0 (reflect and the runtime rely on it); the tests
// check each kind reads back through a type switch, so a change shows.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// typeOf returns the type word of an `any` holding a value of v's type.
func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	int64Type   = typeOf(int64(0))
	float64Type = typeOf(float64(0))
	stringType  = typeOf("")
	timeType    = typeOf(time.Time{})
	bytesType   = typeOf([]byte(nil))
)

// box makes an `any` of type typ whose value is at p.
func box(typ, p unsafe.Pointer) any {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, p
	return v
}

// Row returns a row of n columns, all NULL.
func (s *Slab) Row(n int) Row {
	if len(s.anys)+n > cap(s.anys) {
		s.anys = make([]any, 0, max(slabValues*8, n))
	}
	i := len(s.anys)
	s.anys = s.anys[:i+n]
	return Row(s.anys[i : i+n : i+n])
}

// Int64 returns v in an `any`, as any(v) would.
func (s *Slab) Int64(v int64) any {
	if uint64(v) < 256 {
		return v // Go boxes small values without allocating
	}
	if len(s.ints) == cap(s.ints) {
		s.ints = make([]int64, 0, slabValues)
	}
	s.ints = append(s.ints, v)
	return box(int64Type, unsafe.Pointer(&s.ints[len(s.ints)-1]))
}

// Float64 returns v in an `any`, as any(v) would.
func (s *Slab) Float64(v float64) any {
	if len(s.floats) == cap(s.floats) {
		s.floats = make([]float64, 0, slabValues)
	}
	s.floats = append(s.floats, v)
	return box(float64Type, unsafe.Pointer(&s.floats[len(s.floats)-1]))
}

// String returns v in an `any`, as any(v) would (the string's bytes are
// not copied).
func (s *Slab) String(v string) any {
	if len(s.strs) == cap(s.strs) {
		s.strs = make([]string, 0, slabValues)
	}
	s.strs = append(s.strs, v)
	return box(stringType, unsafe.Pointer(&s.strs[len(s.strs)-1]))
}

// Time returns v in an `any`, as any(v) would.
func (s *Slab) Time(v time.Time) any {
	if len(s.times) == cap(s.times) {
		s.times = make([]time.Time, 0, slabValues)
	}
	s.times = append(s.times, v)
	return box(timeType, unsafe.Pointer(&s.times[len(s.times)-1]))
}

// Bytes returns a copy of v in an `any` holding a []byte (a nil v gives an
// empty, non-nil slice: a value, not NULL). The copy's capacity is its
// length, so appending to it never writes over another value.
func (s *Slab) Bytes(v []byte) any {
	return s.blob(s.Copy(v))
}

// Copy returns a copy of v made in the Slab's byte array (non-nil, its
// capacity its length), for a caller that fills a []byte value before
// boxing it with BytesOwned.
func (s *Slab) Copy(v []byte) []byte {
	n := len(v)
	if n > slabBytes/4 {
		return append(make([]byte, 0, n), v...)
	}
	if len(s.bytes)+n > cap(s.bytes) {
		s.bytes = make([]byte, 0, slabBytes)
	}
	i := len(s.bytes)
	s.bytes = append(s.bytes, v...)
	return s.bytes[i : i+n : i+n]
}

// BytesOwned returns v in an `any` holding a []byte, without copying it:
// v must not be changed afterwards (a slice from Copy, or one the caller
// made for this value alone).
func (s *Slab) BytesOwned(v []byte) any { return s.blob(v) }

func (s *Slab) blob(v []byte) any {
	if len(s.blobs) == cap(s.blobs) {
		s.blobs = make([][]byte, 0, slabValues)
	}
	s.blobs = append(s.blobs, v)
	return box(bytesType, unsafe.Pointer(&s.blobs[len(s.blobs)-1]))
}

// Text returns b's bytes as a string, copied into the Slab's byte array
// (a string of its own when b is large).
func (s *Slab) Text(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	c := s.Copy(b)
	return unsafe.String(&c[0], len(c))
}
