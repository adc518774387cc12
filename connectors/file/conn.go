package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

const (
	formatJSONL   = "jsonl"
	formatCSV     = "csv"
	formatParquet = "parquet"
)

var formats = []string{formatJSONL, formatCSV, formatParquet}

// isFormat reports whether f names a format of the connector.
func isFormat(f string) bool {
	for _, x := range formats {
		if f == x {
			return true
		}
	}
	return false
}

const (
	defaultPartitionRows = 100000
	defaultBatchRows     = 10000
	// maxBatchBytes bounds a batch's memory when rows are large.
	maxBatchBytes = 16 << 20
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "file",
		Summary:   "a directory of JSON Lines, CSV or Parquet files, one file per table (source and destination; with changes=files, CDC as change files)",
		Example:   "file:///tmp/export?format=jsonl",
		Open:      openConnector,
		Prototype: (*Conn)(nil),
	})
}

var (
	_ connector.Source           = (*Conn)(nil)
	_ connector.Destination      = (*Conn)(nil)
	_ connector.CheckpointKeeper = (*Conn)(nil)
	_ connector.TableFinisher    = (*Conn)(nil)
)

// Conn is a directory of table files opened as a source or a destination.
type Conn struct {
	dir    string
	format string

	// ckMu orders the checkpoint directory: writers hold it shared while they
	// write rows and checkpoints; LoadCheckpoints, ReplaceCheckpoints and
	// DropCheckpoints hold it alone, so they never see a half-written batch.
	ckMu sync.RWMutex

	mu       sync.Mutex
	parts    map[string]*partState // by part file name
	flowDirs map[string]bool       // checkpoint directories known to be durable
	// changes is set by changes=files: the connector writes change files
	// (changes.go). changesMu orders WriteEvents; changeBatch is the last
	// change batch number written, -1 until known.
	changes     bool
	changesMu   sync.Mutex
	changeBatch int64

	// foreign maps the part files of other flows' unfinished copies to
	// their flow, as LoadCheckpoints found them: this flow must not touch
	// them.
	foreign map[string]string
}

// Open opens file:///abs/dir?format=jsonl|csv|parquet[&changes=files]. The
// directory need not exist: a destination creates it.
func Open(_ context.Context, u *url.URL) (*Conn, error) {
	const fix = "use file:///absolute/directory?format=jsonl (or format=csv, format=parquet)"
	if u.Opaque != "" {
		return nil, &errs.ConfigError{Msg: fmt.Sprintf("file URL %q has a relative path", errs.Redact(u.String())), Fix: fix}
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, &errs.ConfigError{Msg: fmt.Sprintf("file URL %q names host %q; files are local", errs.Redact(u.String()), u.Host), Fix: fix}
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return nil, &errs.ConfigError{Msg: fmt.Sprintf("file URL %q has no absolute directory", errs.Redact(u.String())), Fix: fix}
	}
	c := &Conn{dir: filepath.Clean(u.Path), format: formatJSONL, parts: map[string]*partState{}, flowDirs: map[string]bool{}, changeBatch: -1}
	q := u.Query()
	for k, vs := range q {
		if k != "format" && k != "changes" {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("file URL: unknown parameter %q", k), Fix: "the parameters are format=" + strings.Join(formats, "|") + " and changes=files"}
		}
		if len(vs) != 1 {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("file URL: %s given more than once", k), Fix: fix}
		}
	}
	switch ch := q.Get("changes"); ch {
	case "":
	case "files":
		c.changes = true
	default:
		return nil, &errs.ConfigError{Msg: fmt.Sprintf("file URL: unknown changes=%q", ch), Fix: "changes=files writes a full flow's changes as change files; leave it out for a snapshot"}
	}
	if f := q.Get("format"); f != "" {
		f = strings.ToLower(f)
		if !isFormat(f) {
			return nil, &errs.ConfigError{
				Msg: fmt.Sprintf("file URL: unknown format %q", q.Get("format")),
				Fix: "format is one of: " + strings.Join(formats, ", "),
			}
		}
		c.format = f
	}
	return c, nil
}

// openConnector is the registry's opener: with changes=files the
// connector is a ChangeFiles, an event destination, so a full flow (copy
// then CDC) may write into the directory; without, a flow into files is a
// snapshot, as ModeAuto then chooses.
func openConnector(ctx context.Context, u *url.URL) (connector.Connector, error) {
	c, err := Open(ctx, u)
	if err != nil {
		return nil, err
	}
	if c.changes {
		return &ChangeFiles{c}, nil
	}
	return c, nil
}

// Dir is the directory the connector reads or writes.
func (c *Conn) Dir() string { return c.dir }

// Format is "jsonl", "csv" or "parquet".
func (c *Conn) Format() string { return c.format }

// Close releases nothing: files are opened and closed per call.
func (c *Conn) Close() error { return nil }

// dataFile is the name of a table's file in the directory.
func (c *Conn) dataFile(ns model.Namespace) string {
	return tableBase(ns) + "." + c.format
}

// schemaFile is the name of the schema sidecar of a table file.
func schemaFile(dataFile string) string {
	return dataFile[:strings.LastIndexByte(dataFile, '.')] + schemaSuffix
}

// fileNames lists the names of the regular files in dir; a missing directory
// has none.
func fileNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// partInfo is a part file found in the directory.
type partInfo struct {
	name, dataFile, partition string
}

// listParts returns the part files in the directory (of every table, or of
// dataFile if it is not empty), in partition order.
func listParts(entries []string, dataFile string) []partInfo {
	var out []partInfo
	for _, name := range entries {
		df, id, ok := parsePart(name)
		if !ok || (dataFile != "" && df != dataFile) {
			continue
		}
		out = append(out, partInfo{name: name, dataFile: df, partition: id})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].dataFile != out[j].dataFile {
			return out[i].dataFile < out[j].dataFile
		}
		return comparePartitions(out[i].partition, out[j].partition) < 0
	})
	return out
}
