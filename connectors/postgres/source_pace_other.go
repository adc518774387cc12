//go:build !linux

package postgres

import (
	"net"
	"time"
)

// connRTT: only Linux's is read; elsewhere the buffer stays the system's.
func connRTT(*net.TCPConn) (time.Duration, bool) { return 0, false }
