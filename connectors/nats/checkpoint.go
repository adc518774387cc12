package nats

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrydb/ferry/errs"
)

// A flow's checkpoints are one value of the bucket (a JSON object), so
// replacing several is one atomic write. Each write names the revision it
// read: another process writing the same flow's checkpoints makes this
// one fail rather than both going on.

// planKey holds, among a flow's checkpoints, the plan its snapshot's
// message IDs name (events.Options.Plan): DropCheckpoints (a flow started
// over) forgets it, so the next snapshot's rows are not dropped as
// duplicates of the last one's. LoadCheckpoints leaves it out.
const planKey = "events/plan"

func newPlan() string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return hex.EncodeToString(b[:])
}

// planOf is the flow's plan, made (and stored) on first use.
func (c *Conn) planOf(ctx context.Context, flow string) (string, error) {
	c.ckMu.Lock()
	p := c.ck[flow][planKey]
	c.ckMu.Unlock()
	if p != "" {
		return p, nil
	}
	if err := c.update(ctx, flow, func(map[string]string) {}); err != nil {
		return "", err
	}
	c.ckMu.Lock()
	defer c.ckMu.Unlock()
	return c.ck[flow][planKey], nil
}

func flowKey(flow string) string { return "flow." + base64.RawURLEncoding.EncodeToString([]byte(flow)) }

// LoadCheckpoints reads the flow's checkpoints.
func (c *Conn) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	c.ckMu.Lock()
	defer c.ckMu.Unlock()
	m := map[string]string{}
	var rev uint64
	e, err := c.kv.Get(ctx, flowKey(flow))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, errs.Unavailable(fmt.Errorf("nats: read checkpoints of flow %s: %w", flow, err))
	default:
		rev = e.Revision()
		if len(e.Value()) > 0 {
			if err := json.Unmarshal(e.Value(), &m); err != nil {
				return nil, fmt.Errorf("nats: checkpoints of flow %s in bucket %s are not ferry's: %w", flow, c.opts.Bucket, err)
			}
		}
	}
	c.ck[flow], c.ckRev[flow] = m, rev
	out := maps.Clone(m)
	delete(out, planKey)
	return out, nil
}

// ReplaceCheckpoints deletes the flow's checkpoints under prefix and
// stores values, in one write.
func (c *Conn) ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error {
	return c.update(ctx, flow, func(m map[string]string) {
		for k := range m {
			if strings.HasPrefix(k, prefix) {
				delete(m, k)
			}
		}
		maps.Copy(m, values)
	})
}

// DropCheckpoints forgets the flow.
func (c *Conn) DropCheckpoints(ctx context.Context, flow string) error {
	return c.update(ctx, flow, func(m map[string]string) { clear(m) })
}

// setCheckpoint stores one checkpoint.
func (c *Conn) setCheckpoint(ctx context.Context, flow, key, value string) error {
	return c.update(ctx, flow, func(m map[string]string) { m[key] = value })
}

// update changes the flow's checkpoints with one write that names the
// revision read. When another process wrote them in between (workers of
// one flow copying partitions side by side), it reads them again and
// retries if the other write changed none of the keys this one changes;
// two writers of one key (two processes running the same flow) fail.
func (c *Conn) update(ctx context.Context, flow string, change func(map[string]string)) error {
	if err := c.ensure(ctx); err != nil {
		return err
	}
	c.ckMu.Lock()
	defer c.ckMu.Unlock()
	if _, ok := c.ck[flow]; !ok {
		if err := c.reload(ctx, flow); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		m := c.ck[flow]
		next := maps.Clone(m)
		change(next)
		mine := changedKeys(m, next)
		if next[planKey] == "" {
			next[planKey] = newPlan()
		}
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		var rev uint64
		if c.ckRev[flow] == 0 {
			rev, err = c.kv.Create(ctx, flowKey(flow), b)
		} else {
			rev, err = c.kv.Update(ctx, flowKey(flow), b, c.ckRev[flow])
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			if err := c.reload(ctx, flow); err != nil {
				return err
			}
			theirs := changedKeys(m, c.ck[flow])
			if attempt < 20 && !overlaps(mine, theirs) {
				continue
			}
			return errs.BadConfig(fmt.Sprintf("nats: the checkpoints of flow %s in bucket %s changed under this process: another ferry runs the same flow", flow, c.opts.Bucket),
				"stop the other process (one flow runs in one process), then run again")
		}
		if err != nil {
			return errs.Unavailable(fmt.Errorf("nats: store checkpoints of flow %s: %w", flow, err))
		}
		c.ck[flow], c.ckRev[flow] = next, rev
		return nil
	}
}

// reload reads the flow's checkpoints again; c.ckMu is held.
func (c *Conn) reload(ctx context.Context, flow string) error {
	c.ckMu.Unlock()
	_, err := c.LoadCheckpoints(ctx, flow)
	c.ckMu.Lock()
	return err
}

// changedKeys is the keys whose values differ between a and b (added,
// removed or changed).
func changedKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out[k] = true
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out[k] = true
		}
	}
	return out
}

func overlaps(a, b map[string]bool) bool {
	for k := range a {
		if b[k] {
			return true
		}
	}
	return false
}
