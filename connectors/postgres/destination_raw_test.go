package postgres

import (
	"encoding/binary"
	"testing"
)

func TestPatchElems(t *testing.T) {
	var data []byte
	data = binary.BigEndian.AppendUint16(data, 2)
	data = binary.BigEndian.AppendUint32(data, 4)
	data = binary.BigEndian.AppendUint32(data, 7)
	arr := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0x01, 0, 0, 0, 0, 0, 0, 0, 1}
	data = binary.BigEndian.AppendUint32(data, uint32(len(arr)))
	data = append(data, arr...)
	if err := patchElems(data, []uint32{0, 25}); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(data[2+8+4+8:]); got != 25 {
		t.Fatalf("element OID %d, want 25", got)
	}
	if got := binary.BigEndian.Uint32(data[2+4:]); got != 7 {
		t.Fatalf("the integer column changed: %d", got)
	}
}

// TestDropFields: the fields of generated columns leave the tuples, NULLs
// (length -1) included, and the batch's own tuples stay whole for a retry.
func TestDropFields(t *testing.T) {
	field := func(b []byte, v []byte) []byte {
		if v == nil {
			return binary.BigEndian.AppendUint32(b, 0xffffffff)
		}
		return append(binary.BigEndian.AppendUint32(b, uint32(len(v))), v...)
	}
	tuple := func(fields ...[]byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(fields)))
		for _, f := range fields {
			b = field(b, f)
		}
		return b
	}
	data := append(tuple([]byte("id1"), []byte("gen"), nil), tuple([]byte("id2"), nil, []byte("x"))...)
	orig := string(data)
	got, err := dropFields(data, []bool{false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	want := append(tuple([]byte("id1"), nil), tuple([]byte("id2"), []byte("x"))...)
	if string(got) != string(want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	if string(data) != orig {
		t.Fatal("the batch's tuples changed")
	}
	if _, err := dropFields(data[:len(data)-1], []bool{false, true, false}); err == nil {
		t.Fatal("a truncated tuple was accepted")
	}
}
