package model

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// Values from a Slab are what any(v) gives: the same type and value through
// a type switch, ==, reflect.DeepEqual and fmt, and they stay so while the
// Slab hands out many more and the garbage collector runs.
func TestSlabValuesAreOrdinaryValues(t *testing.T) {
	var s Slab
	when := time.Date(2026, 12, 6, 20, 1, 2, 345678000, time.UTC)
	zone := time.FixedZone("x", 5*3600+1800)
	type pair struct{ got, want any }
	var kept []pair
	for i := 0; i < 20000; i++ {
		n := int64(i)*1_000_003 - 7_000_000_000
		b := bytes.Repeat([]byte{byte(i)}, i%50)
		if i%997 == 0 {
			b = bytes.Repeat([]byte{1}, slabBytes) // larger than the byte array's share
		}
		txt := fmt.Sprintf("text %d ü", i)
		row := s.Row(5)
		row[0] = s.Int64(n)
		row[1] = s.Float64(float64(n) / 3)
		row[2] = s.String(txt)
		row[3] = s.Time(when.Add(time.Duration(i) * time.Second).In(zone))
		row[4] = s.Bytes(b)
		want := Row{n, float64(n) / 3, txt, when.Add(time.Duration(i) * time.Second).In(zone), b}
		if i%5 == 0 {
			row[0] = s.Int64(int64(i % 256)) // Go's own small values
			want[0] = int64(i % 256)
		}
		for c := range row {
			kept = append(kept, pair{row[c], want[c]})
		}
		if i%4000 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i, p := range kept {
		if !reflect.DeepEqual(p.got, p.want) {
			t.Fatalf("value %d: %#v, want %#v", i, p.got, p.want)
		}
		if fmt.Sprintf("%T %v", p.got, p.got) != fmt.Sprintf("%T %v", p.want, p.want) {
			t.Fatalf("value %d prints as %T %v, want %T %v", i, p.got, p.got, p.want, p.want)
		}
		switch w := p.want.(type) {
		case int64:
			if g, ok := p.got.(int64); !ok || g != w || p.got != p.want {
				t.Fatalf("value %d: %v is not int64 %d", i, p.got, w)
			}
		case float64:
			if g, ok := p.got.(float64); !ok || g != w || p.got != p.want {
				t.Fatalf("value %d: %v is not float64 %v", i, p.got, w)
			}
		case string:
			if g, ok := p.got.(string); !ok || g != w || p.got != p.want {
				t.Fatalf("value %d: %v is not string %q", i, p.got, w)
			}
		case time.Time:
			if g, ok := p.got.(time.Time); !ok || !g.Equal(w) || g.Location() != w.Location() {
				t.Fatalf("value %d: %v is not time %v", i, p.got, w)
			}
		case []byte:
			g, ok := p.got.([]byte)
			if !ok || !bytes.Equal(g, w) || g == nil || cap(g) != len(g) {
				t.Fatalf("value %d: %v is not []byte %v of capacity %d", i, p.got, w, len(w))
			}
		}
	}
}

// A []byte value is a copy with no room after it: appending to one value
// never writes over the next, and changing the slice it was made from
// changes nothing.
func TestSlabBytesAreCopiesWithoutSpare(t *testing.T) {
	var s Slab
	src := []byte("abc")
	a := s.Bytes(src).([]byte)
	b := s.Bytes([]byte("xyz")).([]byte)
	src[0] = 'Z'
	_ = append(a, '!')
	if string(a) != "abc" || string(b) != "xyz" {
		t.Fatalf("a = %q, b = %q, want abc, xyz", a, b)
	}
	if e := s.Bytes(nil).([]byte); e == nil || len(e) != 0 {
		t.Fatalf("Bytes(nil) = %#v, want an empty value, not NULL", e)
	}
	if got := s.Text([]byte("hello")); got != "hello" {
		t.Fatalf("Text = %q", got)
	}
}

// Rows are distinct and NULL until set, and filling one never touches
// another (each row's capacity is its length).
func TestSlabRows(t *testing.T) {
	var s Slab
	var rows []Row
	for i := 0; i < 3000; i++ {
		r := s.Row(3)
		for c := range r {
			if r[c] != nil {
				t.Fatalf("row %d column %d is %v before it is set", i, c, r[c])
			}
		}
		if cap(r) != 3 {
			t.Fatalf("row capacity %d, want 3", cap(r))
		}
		r[0], r[2] = s.Int64(int64(i)+1000), s.String("x")
		_ = append(r, "spill")
		rows = append(rows, r)
	}
	for i, r := range rows {
		if r[0] != any(int64(i)+1000) || r[1] != nil || r[2] != "x" {
			t.Fatalf("row %d = %v", i, r)
		}
	}
	if big := s.Row(10000); len(big) != 10000 {
		t.Fatalf("a row wider than the slab's array has %d columns", len(big))
	}
}

// The slab makes a handful of allocations for thousands of values.
func TestSlabAllocatesPerArrayNotPerValue(t *testing.T) {
	var s Slab
	allocs := testing.AllocsPerRun(100, func() {
		for i := 0; i < 100; i++ {
			r := s.Row(4)
			r[0] = s.Int64(int64(i) + 1_000_000)
			r[1] = s.Float64(float64(i) + 0.5)
			r[2] = s.String("some text")
			r[3] = s.Time(time.Unix(int64(i), 0))
		}
	})
	if allocs > 5 { // about one array of each kind every few runs
		t.Fatalf("%v allocations for 100 rows of 4 values, want a few", allocs)
	}
}

func BenchmarkRowBoxed(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := make(Row, 4)
		r[0] = int64(i) + 1_000_000
		r[1] = float64(i) + 0.5
		r[2] = "some text"
		r[3] = time.Unix(int64(i), 0)
		sinkRow = r
	}
}

func BenchmarkRowSlab(b *testing.B) {
	b.ReportAllocs()
	var s Slab
	for i := 0; i < b.N; i++ {
		r := s.Row(4)
		r[0] = s.Int64(int64(i) + 1_000_000)
		r[1] = s.Float64(float64(i) + 0.5)
		r[2] = s.String("some text")
		r[3] = s.Time(time.Unix(int64(i), 0))
		sinkRow = r
	}
}

var sinkRow Row
