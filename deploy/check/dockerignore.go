package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// BuildInputs lists, relative to repo, the files `go build pkg` reads for
// linux with cgo off: go.mod, go.sum, and the Go, assembly and embedded
// files of the main module's packages that pkg depends on.
func BuildInputs(repo, pkg string) ([]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,SFiles,EmbedFiles", pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v: %s", pkg, err, stderr.String())
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir                         string
			Module                      *struct{ Main bool }
			GoFiles, SFiles, EmbedFiles []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if p.Module == nil || !p.Module.Main {
			continue
		}
		for _, list := range [][]string{p.GoFiles, p.SFiles, p.EmbedFiles} {
			for _, f := range list {
				rel, err := filepath.Rel(repo, filepath.Join(p.Dir, f))
				if err != nil {
					return nil, err
				}
				files = append(files, filepath.ToSlash(rel))
			}
		}
	}
	if len(files) < 3 {
		return nil, fmt.Errorf("go list %s found no source files of the main module", pkg)
	}
	return files, nil
}

// CheckDockerignore reports the needed files that the .dockerignore
// patterns leave out of the build context, using the matcher BuildKit uses.
func CheckDockerignore(dockerignore []byte, needed []string) ([]string, error) {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(dockerignore))
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	var errs []string
	for _, f := range needed {
		excluded, err := pm.MatchesOrParentMatches(f)
		if err != nil {
			return nil, err
		}
		if excluded {
			errs = append(errs, fmt.Sprintf(".dockerignore excludes %s, which the build needs", f))
		}
	}
	return errs, nil
}
