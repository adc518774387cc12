// Package gctune sets how much memory Go's garbage collector may let
// ferry's heap grow by before it collects: more than Go's default while
// the heap that stays alive is small, Go's default once it is large.
//
// ferry's live heap is the batches in flight (lanes times queued batches)
// and stays small and flat: a few tens of MB. Rows pass through it fast,
// so the collector runs often, and with Go's default (GOGC=100: collect
// when the heap doubles) it was a third of the CPU of a copy of rows that
// need no conversion (bench/engine.sh). Letting the heap grow by up to
// Headroom, at most 5 times the live heap, halves that work and costs
// memory only while the live heap is small: past Headroom, the setting is
// Go's default again, so a large live heap (wide rows, a big
// transaction) never grows by more than it would without this package.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Headroom is how much the heap may grow past its live size before a
// collection, as long as that is at most MaxPercent of the live heap.
const Headroom = 256 << 20

// MaxPercent and MinPercent bound the GOGC the tuner sets.
const (
	MaxPercent = 400
	MinPercent = 100
)

// Percent is the GOGC for a live heap of live bytes.
func Percent(live uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := int(min(uint64(Headroom)*100/live, MaxPercent))
	return max(p, MinPercent)
}

var once sync.Once

// Start sets GOGC after every collection from the live heap it left,
// unless the environment sets GOGC (the user's choice wins; GOMEMLIMIT
// applies either way). It returns whether the tuner runs.
func Start() bool {
	if _, set := os.LookupEnv("GOGC"); set {
		return false
	}
	once.Do(func() {
		debug.SetGCPercent(MaxPercent)
		arm()
	})
	return true
}

// arm leaves an object for the collector whose finalizer, run after the
// collection that found it unreachable, retunes and arms the next one.
func arm() {
	s := new([16]byte) // a pointer-sized object is batched by the tiny allocator and may never be finalized
	runtime.SetFinalizer(s, func(*[16]byte) {
		debug.SetGCPercent(Percent(liveHeap()))
		arm()
	})
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
