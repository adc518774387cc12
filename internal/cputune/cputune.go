// Package cputune sets how many threads run ferry's Go code when a
// database server of the flow runs on the same machine.
//
// A flow between two PostgreSQL servers is mostly the servers' work: a
// copy's raw tuples pass through ferry undecoded, and a change stream's
// apply is the destination's index lookups and heap updates. When those
// servers share ferry's cores, every thread Go's scheduler wakes to run a
// goroutine handed work by another (a batch read, a socket ready, a writer
// done) takes a core from a server, and a thread that finds nothing to do
// spins for a while before it sleeps. Measured on two cores with both
// servers there (bench/results.md, session 19): with one thread instead of
// two, a change-stream backlog drain ran at 1.6x the native subscriber's
// speed instead of 1.1x, ferry's CPU halved, and a copy at --parallel 2
// came within 2-5 % of raw COPY pipes instead of 12-17 %. ferry then runs
// on half the machine's cores (at least one), which leaves the rest to the
// servers.
//
// GOMAXPROCS set in the environment wins: nothing is changed.
package cputune

import (
	"context"
	"net"
	"os"
	"runtime"
	"time"
)

// OnThisMachine says whether addr, a connection's remote address, is on
// this machine: a Unix socket, a loopback address, or one of this
// machine's own addresses.
func OnThisMachine(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		return localIP(a.IP)
	case nil:
		return false
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && localIP(ip)
}

// HostOnThisMachine says whether host (a name or an address, as a URL
// gives it) is this machine: localhost, a loopback address, or a name that
// resolves to one of this machine's addresses. A name that does not
// resolve within a second is taken as elsewhere.
func HostOnThisMachine(ctx context.Context, host string) bool {
	if host == "" || host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return localIP(ip)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !localIP(a.IP) {
			return false
		}
	}
	return true
}

func localIP(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	if ip.IsUnspecified() {
		return true // connecting to 0.0.0.0 or :: reaches this machine
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// Procs is how many threads run Go code when a server shares the machine:
// half its cores, at least one.
func Procs() int { return max(1, runtime.NumCPU()/2) }

// ShareWithServer runs ferry's Go code on Procs threads, unless the
// environment sets GOMAXPROCS or ferry already runs on that few. It returns
// the number set (0 when nothing changed) and a function that gives Go its
// default back.
func ShareWithServer() (int, func()) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return 0, func() {}
	}
	n := Procs()
	if n >= runtime.GOMAXPROCS(0) {
		return 0, func() {}
	}
	runtime.GOMAXPROCS(n)
	return n, func() { runtime.SetDefaultGOMAXPROCS() }
}
