package check

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func projectBuild(t *testing.T, makefile []byte) *ProjectBuild {
	t.Helper()
	gomod, err := readFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if makefile == nil {
		if makefile, err = readFile(filepath.Join(repo, "Makefile")); err != nil {
			t.Fatal(err)
		}
	}
	pb, err := ReadProjectBuild(gomod, makefile)
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

func dockerfileErrors(t *testing.T, src string, pb *ProjectBuild) []string {
	t.Helper()
	df, err := ParseDockerfile([]byte(src))
	if err != nil {
		return []string{err.Error()}
	}
	return CheckDockerfile(df, pb, markers)
}

func TestDockerfileMatchesTheProjectBuild(t *testing.T) {
	src, err := readFile(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	pb := projectBuild(t, nil)
	for _, e := range dockerfileErrors(t, string(src), pb) {
		t.Error(e)
	}
}

// The binary the Dockerfile's go build line produces is static, and
// stamped with the VERSION build arg.
func TestDockerfileBuildIsStaticAndVersioned(t *testing.T) {
	needFerry(t)
	f, err := elf.Open(ferryBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): it is not static and will not start on distroless/static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
	out, err := exec.Command(ferryBin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("ferry version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "ferry "+markers["VERSION"]; got != want {
		t.Errorf("ferry version printed %q, want %q: the -X in the Dockerfile's ldflags does not reach the version", got, want)
	}
}

// The duckdb target's go build line, run as written, makes a ferry that
// has the DuckDB connector and needs no library distroless/cc lacks.
func TestDockerfileDuckDBBuild(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ferry-duckdb")
	if err := buildLikeDockerfileTarget(DuckDBTarget, bin); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	// What gcr.io/distroless/cc-debian12 has: glibc, libgcc_s, libstdc++, libgomp.
	inCC := regexp.MustCompile(`^(libc|libm|libpthread|libdl|librt|ld-linux-[\w-]+)\.so\.\d+$|^libstdc\+\+\.so\.6$|^libgcc_s\.so\.1$|^libgomp\.so\.1$`)
	for _, l := range libs {
		if !inCC.MatchString(l) {
			t.Errorf("the DuckDB binary needs %s, which distroless/cc does not have", l)
		}
	}
	out, err := exec.Command(bin, "connectors").CombinedOutput()
	if err != nil {
		t.Fatalf("ferry connectors: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "| duckdb | `duckdb://") || strings.Contains(string(out), "not in this binary") {
		t.Fatalf("the duckdb target's ferry lacks the DuckDB connector:\n%s", out)
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ferry "+markers["VERSION"] {
		t.Errorf("ferry version printed %q (%v)", out, err)
	}
}

func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	pb := projectBuild(t, nil)
	needed, err := BuildInputs(repo, pb.Package)
	if err != nil {
		t.Fatal(err)
	}
	// The dashboard's page is embedded: the list must see embedded files.
	if !containsPrefix(needed, "internal/dashboard/assets/") {
		t.Fatalf("BuildInputs missed the dashboard's embedded assets: %v", needed)
	}
	ignore, err := readFile(filepath.Join(repo, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	errs, err := CheckDockerignore(ignore, needed)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

func TestDockerignoreCheckCatchesExcludedInputs(t *testing.T) {
	needed := []string{"go.mod", "go.sum", "cmd/ferry/main.go", "internal/dashboard/assets/app.js", "internal/cli/root.go"}
	for _, tc := range []struct{ patterns, excluded string }{
		{"**/*.js\n", "internal/dashboard/assets/app.js"},
		{"internal\n!internal/cli\n", "internal/dashboard/assets/app.js"},
		{"*.sum\n", "go.sum"},
		{"cmd/\n", "cmd/ferry/main.go"},
	} {
		errs, err := CheckDockerignore([]byte(tc.patterns), needed)
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) != 1 || !strings.Contains(errs[0], tc.excluded) {
			t.Errorf("patterns %q: got %q, want exactly %s reported", tc.patterns, errs, tc.excluded)
		}
	}
	if errs, _ := CheckDockerignore([]byte("**/*_test.go\n.git\n"), needed); len(errs) != 0 {
		t.Errorf("harmless patterns reported: %q", errs)
	}
}

func TestDockerfileCheckCatchesDrift(t *testing.T) {
	orig, err := readFile(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	pb := projectBuild(t, nil)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"older Go", "ARG GO_VERSION=" + pb.GoVersion, "ARG GO_VERSION=1.24.1", "go.mod asks for Go"},
		{"cgo on", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"toolchain download", "GOTOOLCHAIN=local", "GOTOOLCHAIN=auto", "GOTOOLCHAIN=local"},
		{"other package", " " + pb.Package + "\n", " ./cmd/other\n", "the Makefile builds"},
		{"no trimpath", "-trimpath ", "", "-trimpath"},
		{"version not stamped", "cli.Version=${VERSION}", "cli.Version=dev", "VERSION build arg"},
		{"root user", "USER 65532:65532", "USER root", "non-root"},
		{"no user", "USER 65532:65532\n", "", "non-root"},
		{"fat base", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12", "distroless"},
		{"label from default", `org.opencontainers.image.version="${VERSION}"`, `org.opencontainers.image.version="dev"`, "org.opencontainers.image.version"},
		{"shell entrypoint", `ENTRYPOINT ["/usr/local/bin/ferry"]`, `ENTRYPOINT /usr/local/bin/ferry`, "exec form"},
		{"binary not copied", "COPY --from=build /out/ferry", "COPY --from=build /out/other", "does not COPY"},
		{"lint: casing", "AS build", "as build", "FromAsCasing"},
		{"two builds", "RUN mkdir -p /out/state", "RUN go build ./...", "more than one RUN"},
		{"chained build", "./cmd/ferry\n", "./cmd/ferry && ls\n", "alone"},
		{"duckdb without cgo", "ENV GOTOOLCHAIN=local CGO_ENABLED=1", "ENV GOTOOLCHAIN=local CGO_ENABLED=0", "DuckDB driver is cgo"},
		{"duckdb without its tag", "go build -tags duckdb ", "go build ", "the Makefile's tags and duckdb"},
		{"duckdb on a static base", "FROM gcr.io/distroless/cc-debian12:nonroot AS duckdb", "FROM gcr.io/distroless/static-debian12:nonroot AS duckdb", "needs glibc"},
		{"no duckdb target", "AS duckdb\n", "AS ferry-duckdb\n", "no stage duckdb"},
		{"duckdb as root", "USER 65532:65532\nEXPOSE 8080 9090\nENTRYPOINT [\"/usr/local/bin/ferry\"]\nCMD [\"--help\"]\n\n# The default", "USER root\nEXPOSE 8080 9090\nENTRYPOINT [\"/usr/local/bin/ferry\"]\nCMD [\"--help\"]\n\n# The default", "stage duckdb has USER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.old) {
				t.Fatalf("the Dockerfile no longer contains %q; update this case", tc.old)
			}
			errs := dockerfileErrors(t, strings.Replace(string(orig), tc.old, tc.new, 1), pb)
			if !containsSub(errs, tc.want) {
				t.Errorf("got %q, want an error mentioning %q", errs, tc.want)
			}
		})
	}
	t.Run("Makefile tags", func(t *testing.T) {
		mk := "build:\n\tgo build -tags netgo -o bin/ferry " + pb.Package + "\n"
		if errs := dockerfileErrors(t, string(orig), projectBuild(t, []byte(mk))); !containsSub(errs, "-tags") {
			t.Errorf("got %q, want the tag mismatch reported", errs)
		}
	})
	t.Run("Makefile ldflags", func(t *testing.T) {
		mk := "build:\n\tgo build -ldflags '-X main.commit=abc' -o bin/ferry " + pb.Package + "\n"
		if errs := dockerfileErrors(t, string(orig), projectBuild(t, []byte(mk))); !containsSub(errs, "main.commit") {
			t.Errorf("got %q, want the missing -X reported", errs)
		}
	})
}

func containsSub(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
