package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Problem is one entry of GET /api/errors.
type Problem struct {
	Time time.Time `json:"time"`
	// Kind is "error" (the error that ended the flow) or "warning" (a
	// warning ferry logged). "retry" is reserved for retried steps, which
	// single-process mode does not make.
	Kind      string `json:"kind"`
	Message   string `json:"message"`
	Table     string `json:"table,omitempty"`
	Partition string `json:"partition,omitempty"`
}

// Problems is GET /api/errors.
type Problems struct {
	// Total counts every problem since the start; Errors keeps the last 100.
	Total  int64     `json:"total"`
	Errors []Problem `json:"errors"`
}

const maxProblems = 100

type problemLog struct {
	mu    sync.Mutex
	list  []Problem
	total int64
	scrub func(string) string
}

func (l *problemLog) add(p Problem) {
	p.Message = l.scrub(p.Message)
	p.Table, p.Partition = l.scrub(p.Table), l.scrub(p.Partition)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	l.list = append(l.list, p)
	if len(l.list) > maxProblems {
		l.list = append(l.list[:0:0], l.list[len(l.list)-maxProblems:]...)
	}
}

func (l *problemLog) get() Problems {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Problems{Total: l.total, Errors: append([]Problem{}, l.list...)}
}

// LogHandler passes every record to next and keeps warnings for the
// dashboard's errors list, scrubbed of the flow's secrets. Errors are not
// kept from the log: the error that ends the flow comes through Finish.
func (s *Server) LogHandler(next slog.Handler) slog.Handler {
	return &teeHandler{next: next, problems: s.problems}
}

type teeHandler struct {
	next     slog.Handler
	problems *problemLog
	attrs    []slog.Attr
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l == slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && r.Level < slog.LevelError {
		p := Problem{Time: r.Time, Kind: "warning"}
		var b strings.Builder
		b.WriteString(r.Message)
		add := func(a slog.Attr) bool {
			switch a.Key {
			case "flow":
			case "table":
				p.Table = a.Value.String()
			case "partition":
				p.Partition = a.Value.String()
			default:
				fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.String())
			}
			return true
		}
		for _, a := range h.attrs {
			add(a)
		}
		r.Attrs(add)
		p.Message = b.String()
		h.problems.add(p)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &teeHandler{next: h.next.WithAttrs(attrs), problems: h.problems, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	return &teeHandler{next: h.next.WithGroup(name), problems: h.problems, attrs: h.attrs}
}
