package testsupport

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
)

// UniqueName returns prefix, lower-cased with every character but a letter
// or digit made "_", and a random suffix: a database or user name that tests
// sharing one server cannot both pick. It is at most 60 bytes, within
// PostgreSQL's and MariaDB's limits.
func UniqueName(prefix string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteByte('x')
	}
	var suffix [4]byte
	rand.Read(suffix[:]) //nolint:errcheck // never fails
	name := b.String() + "_" + hex.EncodeToString(suffix[:])
	if len(name) > 60 {
		// Keep the random end; start with a letter, as an identifier must.
		name = "d" + name[len(name)-59:]
	}
	return name
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment
// ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
