package engine

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

// sourceServerKey keeps, in the flow's state, the cluster its source
// served it from (connector.ServerIdentifier), recorded at the first run.
const sourceServerKey = "source_server"

// recordSourceServer records the source's cluster. A source that cannot
// name it (no permission) is logged and left unrecorded: such a flow
// cannot move to another address of its source, as before.
func (e *Engine) recordSourceServer(ctx context.Context) {
	si := e.src.ServerIdentifier
	if si == nil || e.store == nil {
		return
	}
	id, err := si.ServerID(ctx)
	if err == nil {
		err = e.store.SetMeta(ctx, sourceServerKey, id)
	}
	if err != nil {
		e.log.Warn("cannot record which server the source is; the flow will not resume at another address of it", "error", err)
	}
}

// acceptSameServer lets a flow resume on its source under another address
// (another host name, IP or socket; a promoted standby, which keeps its
// primary's identifier) when the source is the same cluster; the stream
// then finds the flow's slot there or stops, exit 2, saying it is gone.
// Another cluster is refused, exit 2: its positions mean nothing to the
// flow.
func (e *Engine) acceptSameServer(ctx context.Context, si connector.ServerIdentifier, from, stored string) error {
	now := errs.Redact(e.cfg.Source)
	id, err := si.ServerID(ctx)
	if err != nil {
		return fmt.Errorf("flow %q was started on source %s: tell whether %s is the same server: %w", e.name, from, now, err)
	}
	if id != stored {
		return errs.BadConfig(fmt.Sprintf("flow %q was started on source %s (server %s), and %s is another server (%s): the flow's position and slot mean nothing there", e.name, from, stored, now, id),
			"point the flow at its source ("+from+", or another address or a promoted standby of that server), or run with --restart to start the flow over from this one")
	}
	e.log.Warn("source moved: the flow resumes on the same server under another address", "from", from, "to", now, "server", id)
	return e.store.SetMeta(ctx, "identity", e.cfg.Identity())
}
