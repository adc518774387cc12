package state

import (
	"os"
	"strings"
	"testing"
)

func TestReverseStartRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadReverse(dir, "shop"); ok || err != nil {
		t.Fatalf("a flow never cut over with --reverse has a record: %v %v", ok, err)
	}
	in := ReverseStart{Forward: "shop", Reverse: "shop-reverse", Source: "postgres://old/shop", Destination: "postgres://new/shop",
		Tables: []string{"public.*"}, Start: "0/16B3748", ForwardEnd: "0/2A00000"}
	if err := WriteReverse(dir, in); err != nil {
		t.Fatal(err)
	}
	in.Checked = true
	if err := WriteReverse(dir, in); err != nil {
		t.Fatal(err)
	}
	out, ok, err := ReadReverse(dir, "shop")
	if err != nil || !ok || out.Start != in.Start || out.ForwardEnd != in.ForwardEnd || !out.Checked || out.Reverse != "shop-reverse" || len(out.Tables) != 1 {
		t.Fatalf("read back %+v (%v, %v), want %+v", out, ok, err, in)
	}
	if err := os.WriteFile(ReversePath(dir, "shop"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadReverse(dir, "shop"); err == nil || !strings.Contains(err.Error(), "run ferry cutover --reverse again") {
		t.Fatalf("a corrupt record: %v", err)
	}
}
