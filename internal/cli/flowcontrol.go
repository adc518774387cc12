package cli

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/ferrydb/ferry/scaleout"
)

// Actions on a running flow that ferry flow and the fleet dashboard share.
const (
	actionPause   = scaleout.SignalPause
	actionResume  = scaleout.SignalResume
	actionCancel  = scaleout.SignalCancel
	actionCutover = "cutover"
)

// controlFlow pauses, resumes or cancels a flow (its workflow's signals), or
// asks it to cut over (the cutover update, which answers with the position
// it drains to), and says what was done. ferry flow pause|resume|cancel and
// the dashboard's buttons call it; ferry flow cutover asks through it too,
// then waits for the flow's end.
func controlFlow(ctx context.Context, c client.Client, name, action string) (string, *scaleout.CutoverAnswer, error) {
	switch action {
	case actionPause, actionResume, actionCancel:
		if err := scaleout.Signal(ctx, c, name, action); err != nil {
			return "", nil, notFoundIsConfig(err)
		}
		return fmt.Sprintf("%s sent to flow %s", action, name), nil, nil
	case actionCutover:
		ans, err := scaleout.RequestCutover(ctx, c, name, scaleout.CutoverRequest{})
		if err != nil {
			return "", nil, err
		}
		return cutoverMessage(name, ans), &ans, nil
	}
	return "", nil, usageError{fmt.Errorf("unknown action %q: use pause, resume, cutover or cancel", action)}
}

// cutoverMessage says what a cutover request started.
func cutoverMessage(name string, ans scaleout.CutoverAnswer) string {
	switch {
	case ans.Undrained:
		return fmt.Sprintf("cutover sent to flow %s: its workers predate the drain, so it stops at what was already read", name)
	case ans.Already:
		return fmt.Sprintf("flow %s is already cutting over, to %s", name, ans.Position)
	}
	return fmt.Sprintf("flow %s: draining to the source's position %s", name, ans.Position)
}
