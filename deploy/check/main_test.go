package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Set by TestMain.
var (
	repo     string      // the repository root
	ferryBin string      // ferry, built by the Dockerfile's own go build line
	helmBin  string      // helm, at the version go.mod pins as a tool
	ferry    *FerryFlags // ferryBin's flags
	buildErr error       // why ferry could not be built, reported by the tests that need it
)

// Marker build args: a label or version carrying one of these came from
// the build arg, not from a default.
var markers = map[string]string{"VERSION": "9.8.7-check", "REVISION": "0123abcd-check", "CREATED": "2030-01-02T03:04:05Z"}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repo = filepath.Clean(filepath.Join(wd, "..", ".."))
	tmp, err := os.MkdirTemp("", "ferry-deploy-check-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	helmBin = filepath.Join(tmp, "helm")
	if out, err := exec.Command("go", "build", "-o", helmBin, "helm.sh/helm/v3/cmd/helm").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build helm: %v\n%s", err, out)
		return 1
	}
	ferryBin = filepath.Join(tmp, "ferry")
	buildErr = buildLikeDockerfile(ferryBin)
	ferry = &FerryFlags{Binary: ferryBin}
	return m.Run()
}

// buildLikeDockerfile runs the Dockerfile's go build line as written (its
// environment, flags and package), changing only the output path and the
// target platform to this machine's.
func buildLikeDockerfile(out string) error { return buildLikeDockerfileTarget("", out) }

// buildLikeDockerfileTarget is buildLikeDockerfile for the go build whose
// binary the target stage copies ("" for the default image).
func buildLikeDockerfileTarget(target, out string) error {
	src, err := readFile(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		return err
	}
	df, err := ParseDockerfile(src)
	if err != nil {
		return err
	}
	args := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	for k, v := range markers {
		args[k] = v
	}
	gb, err := df.GoBuildFor(target, args)
	if err != nil {
		return err
	}
	cmdArgs := []string{"build"}
	for flag, v := range gb.Flags {
		if v == "true" {
			cmdArgs = append(cmdArgs, flag)
		} else {
			cmdArgs = append(cmdArgs, flag+"="+v)
		}
	}
	cmdArgs = append(cmdArgs, "-o", out)
	cmdArgs = append(cmdArgs, gb.Packages...)
	cmd := exec.Command("go", cmdArgs...)
	cmd.Dir = repo
	cmd.Env = os.Environ()
	for k, v := range gb.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (the Dockerfile's build): %v\n%s", strings.Join(cmdArgs, " "), err, stderr.String())
	}
	return nil
}

func needFerry(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("ferry could not be built with the Dockerfile's flags: %v", buildErr)
	}
}
