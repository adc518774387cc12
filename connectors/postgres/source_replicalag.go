package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

var _ connector.ReplicaLagReader = (*Conn)(nil)

// defaultReplicaLagQuery is the largest replay lag of the server's
// physical streaming replicas, 0 without any (or while the lag is unknown:
// NULL). Logical walsenders (ferry's own slot among them) are left out:
// their walsender is connected to a database, a physical one is not.
const defaultReplicaLagQuery = `SELECT EXTRACT(epoch FROM max(r.replay_lag))::float8
	FROM pg_stat_replication r JOIN pg_stat_activity a ON a.pid = r.pid WHERE a.datid IS NULL`

// ReplicaLag runs the user's --replica-lag-query (seconds), or by default
// reads pg_stat_replication's largest replay_lag.
func (c *Conn) ReplicaLag(ctx context.Context, query string) (time.Duration, error) {
	q := query
	if q == "" {
		q = defaultReplicaLagQuery
	}
	var secs *float64
	err := c.pool.QueryRow(ctx, q).Scan(&secs)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		cerr := c.classify(err, "measure the replicas' lag")
		if query == "" || ctx.Err() != nil || errs.IsUnavailable(cerr) {
			return 0, cerr
		}
		return 0, errs.BadConfig(fmt.Sprintf("--replica-lag-query %q failed on the source: %v", query, c.scrub.Err(err)),
			"give a query that returns one number of seconds, e.g. SELECT EXTRACT(epoch FROM max(replay_lag)) FROM pg_stat_replication")
	}
	return secondsLag(secs), nil
}

// secondsLag turns a number of seconds (nil: none) into a lag.
func secondsLag(secs *float64) time.Duration {
	if secs == nil || *secs <= 0 || math.IsNaN(*secs) {
		return 0
	}
	return time.Duration(min(*secs, float64(math.MaxInt64/int64(time.Second))) * float64(time.Second))
}
