package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrydb/ferry/engine"
)

// LogObserver logs each partition's start and end at debug level, with the
// flow (from log), table and partition as attributes. It returns nil when
// log does not log debug records, so a run pays nothing for it.
func LogObserver(log *slog.Logger) engine.Observer {
	if log == nil || !log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return &logObserver{log: log, parts: map[string]*partLog{}}
}

type logObserver struct {
	engine.NopObserver
	log   *slog.Logger
	mu    sync.Mutex
	parts map[string]*partLog
}

type partLog struct {
	start time.Time
	rows  int64
}

func (l *logObserver) PartitionStarted(table, partition string) {
	l.mu.Lock()
	l.parts[partition] = &partLog{start: time.Now()}
	l.mu.Unlock()
	l.log.Debug("partition started", "table", table, "partition", partition)
}

func (l *logObserver) BatchWritten(table, partition string, rows, bytes int64, d time.Duration) {
	l.mu.Lock()
	if p := l.parts[partition]; p != nil {
		p.rows += rows
	}
	l.mu.Unlock()
}

func (l *logObserver) PartitionDone(table, partition string) {
	l.mu.Lock()
	p := l.parts[partition]
	delete(l.parts, partition)
	l.mu.Unlock()
	if p == nil {
		return
	}
	l.log.Debug("partition copied", "table", table, "partition", partition, "rows", p.rows,
		"took", time.Since(p.start).Round(time.Millisecond))
}
