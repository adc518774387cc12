package model

import "testing"

func TestRowSizeCountsWhatValuesHold(t *testing.T) {
	big := make([]byte, 1<<20)
	r := Row{int64(1), nil, "abc", big, []any{"de", nil}, Unchanged}
	want := int64(16 + 16 + (16 + 3) + (16 + 1<<20) + (16 + (16 + 2) + 16) + 16)
	if got := r.Size(); got != want {
		t.Fatalf("Size %d, want %d", got, want)
	}
	if Row(nil).Size() != 0 {
		t.Fatalf("an empty row has a size")
	}
}
