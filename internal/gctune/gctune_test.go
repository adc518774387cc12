package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, MaxPercent},
		{10 << 20, MaxPercent},  // a small live heap: 5 times
		{128 << 20, 200},        // 256 MiB of headroom is twice the live heap
		{256 << 20, MinPercent}, // Go's default from here on
		{4 << 30, MinPercent},
	} {
		if got := Percent(c.live); got != c.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// gcPercent reads GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// waitPercent collects until the tuner has set want (its finalizer runs
// after a collection, on the finalizer goroutine).
func waitPercent(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d, want %d", gcPercent(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// The tuner follows the live heap both ways: 400 while it is small, Go's
// default while 300 MiB stay alive, 400 again once they are freed.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "") // set: the tuner must stand aside
	if Start() {
		t.Fatal("Start ran with GOGC set in the environment")
	}
	unsetGOGC(t)
	if !Start() {
		t.Fatal("Start did not run without GOGC")
	}
	waitPercent(t, MaxPercent)
	big := make([][]byte, 300)
	for i := range big {
		big[i] = make([]byte, 1<<20)
		big[i][0] = 1
	}
	waitPercent(t, MinPercent)
	runtime.KeepAlive(big)
	big = nil
	waitPercent(t, MaxPercent)
}

// unsetGOGC removes GOGC from the environment for the rest of the test.
func unsetGOGC(t *testing.T) {
	t.Helper()
	old, had := os.LookupEnv("GOGC")
	os.Unsetenv("GOGC")
	t.Cleanup(func() {
		if had {
			os.Setenv("GOGC", old)
		}
	})
}
