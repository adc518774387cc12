package check

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// FerryFlags reads the long flags of `ferry SUBCOMMAND` (its own and the
// global ones) from the binary's --help, so the deployment files are checked
// against the CLI that is actually built, not against a list kept here.
type FerryFlags struct {
	Binary string

	mu    sync.Mutex
	cache map[string]map[string]bool
}

var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*)`)

// Flags returns the flags of one subcommand, or an error when ferry does
// not have that subcommand.
func (f *FerryFlags) Flags(sub string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.cache[sub]; ok {
		return fl, nil
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(f.Binary, sub, "--help")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ferry %s --help: %v: %s", sub, err, strings.TrimSpace(stderr.String()))
	}
	out := stdout.String()
	if !strings.Contains(out, "ferry "+sub) {
		return nil, fmt.Errorf("ferry has no %q command (its help does not show \"ferry %s\")", sub, sub)
	}
	fl := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(out, -1) {
		fl[m[1]] = true
	}
	if f.cache == nil {
		f.cache = map[string]map[string]bool{}
	}
	f.cache[sub] = fl
	return fl, nil
}

// CheckFlags checks a ferry command line (subcommand first): every --flag
// must exist for that subcommand.
func CheckFlags(args []string, flags func(string) (map[string]bool, error)) []string {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return []string{fmt.Sprintf("ferry args %q do not start with a subcommand", args)}
	}
	known, err := flags(args[0])
	if err != nil {
		return []string{err.Error()}
	}
	var errs []string
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !known[name] {
			errs = append(errs, fmt.Sprintf("`ferry %s` has no flag --%s", args[0], name))
		}
	}
	return errs
}

// EnvNames collects the string literals of the main module's Go sources
// (tests, deploy/ and tools/ excluded) that look like environment variable
// names, such as "FERRY_UI_TOKEN" or the prefix "FERRY_CONNECTION_".
func EnvNames(repo string) (map[string]bool, error) {
	lit := regexp.MustCompile(`"([A-Z][A-Z0-9_]*_[A-Z0-9_]*)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, path)
		if d.IsDir() {
			if rel == ".git" || rel == "deploy" || rel == "tools" || rel == "e2e" || rel == "bench" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("no environment variable names found in the Go sources")
	}
	return names, nil
}

// CheckEnvNames reports the variables among vars that are ferry's own
// (FERRY_* or TEMPORAL_*) but that ferry's sources never name, neither
// whole nor as a prefix ending in "_" (FERRY_CONNECTION_ covers
// FERRY_CONNECTION_SRC). OTEL_* and other variables are not ferry's.
func CheckEnvNames(vars []string, known map[string]bool) []string {
	var errs []string
	for _, v := range vars {
		if !strings.HasPrefix(v, "FERRY_") && !strings.HasPrefix(v, "TEMPORAL_") {
			continue
		}
		ok := known[v]
		for k := range known {
			if strings.HasSuffix(k, "_") && strings.HasPrefix(v, k) && len(v) > len(k) {
				ok = true
			}
		}
		if !ok {
			errs = append(errs, fmt.Sprintf("environment variable %s is not read by ferry (no Go source names it)", v))
		}
	}
	return errs
}
