package faults

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory reads a process's resident set size and its high-water mark
// (VmRSS and VmHWM in /proc/<pid>/status), in bytes.
func Memory(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, k, v)
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmRSS" {
			rss = n * 1024
		} else {
			peak = n * 1024
		}
	}
	return rss, peak, sc.Err()
}

// MemWatch samples a process's memory until it exits, keeping the highest
// high-water mark seen: the kernel's VmHWM is only readable while the process
// lives, so a process that is killed or exits keeps the last sample.
type MemWatch struct {
	mu      sync.Mutex
	peak    int64
	samples []int64 // RSS, one per sample
	stop    chan struct{}
	done    chan struct{}
}

// WatchMemory samples pid every interval until Stop or until the process is
// gone.
func WatchMemory(pid int, interval time.Duration) *MemWatch {
	w := &MemWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			rss, peak, err := Memory(pid)
			if err != nil {
				return // the process is gone
			}
			w.mu.Lock()
			w.peak = max(w.peak, peak)
			w.samples = append(w.samples, rss)
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends the sampling (it also ends by itself when the process exits).
func (w *MemWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Peak is the highest VmHWM sampled, in bytes.
func (w *MemWatch) Peak() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// RSS returns the RSS samples so far, in bytes.
func (w *MemWatch) RSS() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.samples...)
}
