package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferrydb/ferry/errs"
)

// Every --help example can be pasted into a shell as it is: a URL holding
// '?' or '&' is quoted (unquoted, the shell runs the command in the
// background at '&' or expands the '?' as a glob). The commands that copy
// a database show a PostgreSQL and a MySQL example, not only fake:// ones.
func TestHelpExamplesPasteIntoAShell(t *testing.T) {
	root := newRoot(&globals{stdout: io.Discard, stderr: io.Discard, scrubber: errs.NewScrubber()})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			for _, w := range unquotedWords(line) {
				if strings.Contains(w, "://") && strings.ContainsAny(w, "?&") {
					t.Errorf("%s --help: %q holds an unquoted '?' or '&' in a URL: quote the URL", c.CommandPath(), line)
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, name := range []string{"sync", "verify", "plan", "drop", "cutover", "snapshot"} {
		c, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.Example, "postgres://") {
			t.Errorf("ferry %s --help has no PostgreSQL example", name)
		}
	}
	for _, name := range []string{"ferry", "sync"} {
		c := root
		if name != "ferry" {
			c, _, _ = root.Find([]string{name})
		}
		if !strings.Contains(c.Example, "mysql://") || !strings.Contains(c.Example, "postgres://") {
			t.Errorf("%s --help lacks a PostgreSQL or a MySQL example", c.CommandPath())
		}
	}
}

// unquotedWords splits a shell line into words, each with only the
// characters outside quotes (what the shell would interpret).
func unquotedWords(line string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == ' ' || r == '\t':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}

// ferry drop --help lists only the options that name the flow (and the
// global ones), not the copy's and CDC's tuning.
func TestDropHelpListsWhatNamesTheFlow(t *testing.T) {
	root := newRoot(&globals{stdout: io.Discard, stderr: io.Discard, scrubber: errs.NewScrubber()})
	drop, _, err := root.Find([]string{"drop"})
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	drop.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			shown = append(shown, f.Name)
		}
	})
	if got, want := strings.Join(shown, " "), "connection connections-file file name rename state-dir tables"; got != want {
		t.Errorf("ferry drop --help lists %s; want %s", got, want)
	}
	if err := drop.ParseFlags([]string{"--parallel", "8", "--mode", "full"}); err != nil {
		t.Errorf("drop refuses the sync flags it hides: %v", err)
	}
}
