package postgres

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// connRTT is the smoothed round-trip time the kernel measured on a TCP
// connection (from the handshake, at first); false for another kind of
// connection or when it cannot be read.
func connRTT(c *net.TCPConn) (time.Duration, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	cerr := raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if cerr != nil || err != nil {
		return 0, false
	}
	return time.Duration(info.Rtt) * time.Microsecond, true
}
