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
