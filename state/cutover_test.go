package state

import (
	"os"
	"testing"
	"time"
)

func TestCutoverRequestFirstOneStands(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := PendingCutover(dir, "f"); err != nil || ok {
		t.Fatalf("pending before any request: %v %v", ok, err)
	}
	first := time.Date(2026, 12, 4, 23, 0, 0, 123456789, time.UTC)
	got, err := RequestCutover(dir, "f", first)
	if err != nil || !got.Equal(first) {
		t.Fatalf("first request: %s %v", got, err)
	}
	// A second requester waits for the first request, not a new one.
	got, err = RequestCutover(dir, "f", first.Add(time.Minute))
	if err != nil || !got.Equal(first) {
		t.Fatalf("second request: %s %v, want the first's time %s", got, err, first)
	}
	if at, ok, err := PendingCutover(dir, "f"); err != nil || !ok || !at.Equal(first) {
		t.Fatalf("pending: %s %v %v", at, ok, err)
	}
	if err := ClearCutover(dir, "f"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := PendingCutover(dir, "f"); ok {
		t.Fatal("a request remains after ClearCutover")
	}
	if err := ClearCutover(dir, "f"); err != nil {
		t.Fatalf("clearing twice: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files left behind: %v", entries)
	}
}

func TestCutoverRequestThatIsNotATimeSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(CutoverRequestPath(dir, "f"), []byte("soon"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := PendingCutover(dir, "f"); err == nil {
		t.Fatal("a request that is not a time was accepted")
	}
}

func TestCutoverReportReplacedWhole(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := CutoverReport(dir, "f"); err != nil || ok {
		t.Fatalf("report before any: %v %v", ok, err)
	}
	for _, r := range []string{`{"a":1}`, `{"b":2}`} {
		if err := WriteCutoverReport(dir, "f", []byte(r)); err != nil {
			t.Fatal(err)
		}
		b, ok, err := CutoverReport(dir, "f")
		if err != nil || !ok || string(b) != r {
			t.Fatalf("report %q %v %v, want %q", b, ok, err, r)
		}
	}
	if ok, err := Exists(dir, "f"); err != nil || ok {
		t.Fatalf("a flow without state exists: %v %v", ok, err)
	}
}
