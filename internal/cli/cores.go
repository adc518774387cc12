package cli

import (
	"log/slog"
	"runtime"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/cputune"
)

// shareCores runs ferry's Go code on half the machine's cores while a flow
// runs whose source or destination server is on this machine
// (internal/cputune: the servers do most of a flow's work, and Go's threads
// handing work to each other took their cores). GOMAXPROCS in the
// environment wins. The returned function gives Go its default back.
func shareCores(log *slog.Logger, conns ...connector.Connector) func() {
	for _, c := range conns {
		if cl := connector.Discover(c).Colocated; cl != nil && cl.ServerOnThisMachine() {
			n, restore := cputune.ShareWithServer()
			if n > 0 {
				log.Info("a database server of the flow runs on this machine: ferry leaves it cores",
					"ferry_cores", n, "machine_cores", runtime.NumCPU(), "override", "GOMAXPROCS=N")
			}
			return restore
		}
	}
	return func() {}
}
