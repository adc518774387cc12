package check

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Dockerfile is a Dockerfile parsed by BuildKit, the parser `docker build` uses.
type Dockerfile struct {
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	// Warnings are BuildKit's parse warnings and lint findings (the checks of
	// `docker build --check` that need no build context).
	Warnings []string
}

// ParseDockerfile parses src and runs BuildKit's parse-time lint rules.
func ParseDockerfile(src []byte) (*Dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("parse the Dockerfile: %w", err)
	}
	df := &Dockerfile{}
	for _, w := range res.Warnings {
		df.Warnings = append(df.Warnings, fmt.Sprintf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		df.Warnings = append(df.Warnings, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	df.Stages, df.MetaArgs, err = instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, fmt.Errorf("parse the Dockerfile's instructions: %w", err)
	}
	return df, nil
}

// GoBuild is the `go build` command of a Dockerfile's RUN, with its
// variables expanded as BuildKit would expand them.
type GoBuild struct {
	Stage    string            // the build stage's name
	BaseName string            // its FROM image, expanded
	Env      map[string]string // ENV of the stage and VAR=value prefixes of the command
	Flags    map[string]string // -trimpath → "true", -ldflags → its value, ...
	Output   string            // -o
	Packages []string
}

type envList struct{ m map[string]string }

func (e envList) Get(k string) (string, bool) { v, ok := e.m[k]; return v, ok }
func (e envList) Keys() []string {
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	return keys
}

// GoBuild returns the `go build` of the image docker build makes by default
// (the last stage), expanded with buildArgs (as given with docker build
// --build-arg) over the ARG defaults.
func (df *Dockerfile) GoBuild(buildArgs map[string]string) (*GoBuild, error) {
	return df.GoBuildFor("", buildArgs)
}

// GoBuildFor returns the `go build` whose output the target stage copies
// ("" for the last stage, the default target): each build stage has one
// RUN calling go build.
func (df *Dockerfile) GoBuildFor(target string, buildArgs map[string]string) (*GoBuild, error) {
	builds, err := df.goBuilds(buildArgs)
	if err != nil {
		return nil, err
	}
	if len(builds) == 0 {
		return nil, errors.New("no RUN calls go build")
	}
	final, err := df.Stage(target)
	if err != nil {
		return nil, err
	}
	for _, c := range final.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok {
			for _, gb := range builds {
				if cp.From == gb.Stage && slices.Contains(cp.SourcePaths, gb.Output) {
					return gb, nil
				}
			}
		}
	}
	if target == "" {
		return builds[0], nil // the default build; CheckDockerfile reports the missing COPY
	}
	return nil, fmt.Errorf("stage %s copies the output of no go build", final.Name)
}

// Stage is the stage named name; "" is the last one.
func (df *Dockerfile) Stage(name string) (*instructions.Stage, error) {
	if len(df.Stages) == 0 {
		return nil, errors.New("the Dockerfile has no stage")
	}
	if name == "" {
		return &df.Stages[len(df.Stages)-1], nil
	}
	for i := range df.Stages {
		if df.Stages[i].Name == name {
			return &df.Stages[i], nil
		}
	}
	return nil, fmt.Errorf("the Dockerfile has no stage %s", name)
}

// goBuilds finds the RUN that calls go build in each stage.
func (df *Dockerfile) goBuilds(buildArgs map[string]string) ([]*GoBuild, error) {
	lex := shell.NewLex('\\')
	global := map[string]string{}
	for _, a := range df.MetaArgs {
		for _, kv := range a.Args {
			global[kv.Key] = kv.ValueString()
			if v, ok := buildArgs[kv.Key]; ok {
				global[kv.Key] = v
			}
		}
	}
	var builds []*GoBuild
	for _, st := range df.Stages {
		var found *GoBuild
		env := map[string]string{}
		base, _, err := lex.ProcessWord(st.BaseName, envList{global})
		if err != nil {
			return nil, fmt.Errorf("stage %s: FROM %s: %w", st.Name, st.BaseName, err)
		}
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.ArgCommand:
				for _, kv := range c.Args {
					v, ok := buildArgs[kv.Key]
					if !ok {
						if g, inGlobal := global[kv.Key]; inGlobal && kv.Value == nil {
							v = g
						} else {
							v = kv.ValueString()
						}
					}
					env[kv.Key] = v
				}
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					v, _, err := lex.ProcessWord(kv.Value, envList{env})
					if err != nil {
						return nil, fmt.Errorf("stage %s: ENV %s: %w", st.Name, kv.Key, err)
					}
					env[kv.Key] = v
				}
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				if !regexp.MustCompile(`\bgo\s+build\b`).MatchString(line) {
					continue
				}
				if found != nil {
					return nil, fmt.Errorf("more than one RUN calls go build in stage %s; keep one, so it can be checked", st.Name)
				}
				if !c.PrependShell {
					return nil, errors.New("the go build RUN must use the shell form, so its ${VARIABLES} expand")
				}
				words, err := lex.ProcessWords(line, envList{env})
				if err != nil {
					return nil, fmt.Errorf("expand %q: %w", line, err)
				}
				gb, err := parseGoBuild(words)
				if err != nil {
					return nil, err
				}
				gb.Stage, gb.BaseName = st.Name, base
				for k, v := range env {
					if _, ok := gb.Env[k]; !ok {
						gb.Env[k] = v
					}
				}
				found = gb
			}
		}
		if found != nil {
			builds = append(builds, found)
		}
	}
	return builds, nil
}

func parseGoBuild(words []string) (*GoBuild, error) {
	gb := &GoBuild{Env: map[string]string{}, Flags: map[string]string{}}
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		k, v, _ := strings.Cut(words[i], "=")
		gb.Env[k] = v
	}
	if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
		return nil, fmt.Errorf("the RUN must be `[VAR=value ...] go build ...` alone, got %q", words)
	}
	for _, w := range words[i+2:] {
		if w == "&&" || w == ";" || w == "|" || w == "||" {
			return nil, fmt.Errorf("keep go build alone in its RUN (found %q)", w)
		}
	}
	rest := words[i+2:]
	valued := map[string]bool{"-ldflags": true, "-gcflags": true, "-tags": true, "-o": true, "-mod": true, "-p": true, "-buildmode": true, "-pgo": true}
	for j := 0; j < len(rest); j++ {
		w := rest[j]
		if !strings.HasPrefix(w, "-") {
			gb.Packages = append(gb.Packages, w)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(w, "-"), "=")
		name = "-" + strings.TrimPrefix(name, "-")
		if !hasVal {
			if valued[name] {
				if j+1 >= len(rest) {
					return nil, fmt.Errorf("%s needs a value", name)
				}
				j++
				val = rest[j]
			} else {
				val = "true"
			}
		}
		gb.Flags[name] = val
	}
	gb.Output = gb.Flags["-o"]
	delete(gb.Flags, "-o")
	return gb, nil
}

// XFlags returns the -X settings of the ldflags: symbol → value.
func (gb *GoBuild) XFlags() map[string]string {
	out := map[string]string{}
	f := strings.Fields(gb.Flags["-ldflags"])
	for i := 0; i < len(f); i++ {
		var s string
		switch {
		case f[i] == "-X" && i+1 < len(f):
			i++
			s = f[i]
		case strings.HasPrefix(f[i], "-X="):
			s = strings.TrimPrefix(f[i], "-X=")
		default:
			continue
		}
		k, v, _ := strings.Cut(s, "=")
		out[k] = v
	}
	return out
}

// ProjectBuild is how the project itself builds ferry, read from the
// Makefile's build target and go.mod.
type ProjectBuild struct {
	GoVersion string // go.mod's go directive
	Package   string // the main package the Makefile builds
	Tags      string // its -tags, if any
	XFlags    map[string]string
}

// ReadProjectBuild reads go.mod and the Makefile's `build:` target.
func ReadProjectBuild(gomod, makefile []byte) (*ProjectBuild, error) {
	m := regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`).FindSubmatch(gomod)
	if m == nil {
		return nil, errors.New("go.mod has no go directive")
	}
	pb := &ProjectBuild{GoVersion: string(m[1])}
	var recipe []string
	in := false
	for _, line := range strings.Split(string(makefile), "\n") {
		switch {
		case strings.HasPrefix(line, "build:"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case in:
			in = false
		}
	}
	for _, line := range recipe {
		if !strings.Contains(line, "go build") {
			continue
		}
		// Split as the shell would; make's own $(VAR) stays one word.
		words, err := shell.NewLex('\\').ProcessWords(strings.ReplaceAll(line, "$(", "\\$("), envList{map[string]string{}})
		if err != nil {
			return nil, fmt.Errorf("Makefile build target %q: %w", line, err)
		}
		for len(words) > 0 && words[0] != "go" {
			words = words[1:]
		}
		gb, err := parseGoBuild(words)
		if err != nil {
			return nil, fmt.Errorf("Makefile build target: %w", err)
		}
		if len(gb.Packages) != 1 {
			return nil, fmt.Errorf("Makefile build target builds %q; want one package", gb.Packages)
		}
		pb.Package, pb.Tags, pb.XFlags = gb.Packages[0], gb.Flags["-tags"], gb.XFlags()
		return pb, nil
	}
	return nil, errors.New("the Makefile's build target has no go build line")
}

var distrolessOrScratch = regexp.MustCompile(`^(scratch|gcr\.io/distroless/static(-debian\d+)?(:[\w.-]+)?(@sha256:[a-f0-9]{64})?|cgr\.dev/chainguard/static(:[\w.-]+)?)$`)

// CheckDockerfile compares the Dockerfile with the project's build and with
// what the image promises: a static binary built by go.mod's Go version,
// the same package and tags as the Makefile, the version stamped in, on a
// small base, run by a non-root user, labelled with its version. buildArgs
// must set VERSION, REVISION and CREATED to distinct marker values.
func CheckDockerfile(df *Dockerfile, pb *ProjectBuild, buildArgs map[string]string) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	for _, w := range df.Warnings {
		add("BuildKit: %s", w)
	}
	gb, err := df.GoBuild(buildArgs)
	if err != nil {
		return append(errs, err.Error())
	}
	if gb.Env["CGO_ENABLED"] != "0" {
		add("the build must set CGO_ENABLED=0 for a static binary (got %q)", gb.Env["CGO_ENABLED"])
	}
	if gb.Flags["-tags"] != pb.Tags {
		add("go build -tags %q; the Makefile uses %q", gb.Flags["-tags"], pb.Tags)
	}
	final := df.Stages[len(df.Stages)-1]
	if !distrolessOrScratch.MatchString(final.BaseName) {
		add("the final stage is FROM %s; want distroless static or scratch", final.BaseName)
	}
	errs = append(errs, checkImage(df, gb, final, pb, buildArgs)...)

	// The DuckDB image: the same build with cgo and the duckdb tag, on a
	// base with glibc.
	if _, err := df.Stage(DuckDBTarget); err != nil {
		return append(errs, fmt.Sprintf("%v: docker build --target %s makes the image with the DuckDB connector", err, DuckDBTarget))
	}
	dgb, err := df.GoBuildFor(DuckDBTarget, buildArgs)
	if err != nil {
		return append(errs, err.Error())
	}
	if dgb.Env["CGO_ENABLED"] != "1" {
		add("the %s build must set CGO_ENABLED=1: the DuckDB driver is cgo (got %q)", DuckDBTarget, dgb.Env["CGO_ENABLED"])
	}
	if want := strings.TrimSpace(pb.Tags + " duckdb"); dgb.Flags["-tags"] != want && dgb.Flags["-tags"] != strings.ReplaceAll(want, " ", ",") {
		add("the %s build has -tags %q; want %q (the Makefile's tags and duckdb)", DuckDBTarget, dgb.Flags["-tags"], want)
	}
	dst, _ := df.Stage(DuckDBTarget)
	if !glibcBase.MatchString(dst.BaseName) {
		add("the %s stage is FROM %s; the DuckDB library needs glibc and libstdc++: want distroless cc or a Debian slim image", DuckDBTarget, dst.BaseName)
	}
	errs = append(errs, checkImage(df, dgb, *dst, pb, buildArgs)...)
	return errs
}

// DuckDBTarget is the stage of the image with the DuckDB connector.
const DuckDBTarget = "duckdb"

var glibcBase = regexp.MustCompile(`^(gcr\.io/distroless/(cc|base)(-debian\d+)?(:[\w.-]+)?(@sha256:[a-f0-9]{64})?|debian:[\w.-]+-slim(@sha256:[a-f0-9]{64})?)$`)

// checkImage checks one build and the image stage that copies its binary.
func checkImage(df *Dockerfile, gb *GoBuild, final instructions.Stage, pb *ProjectBuild, buildArgs map[string]string) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if want := "golang:" + pb.GoVersion; gb.BaseName != want && !strings.HasPrefix(gb.BaseName, want+"-") && !strings.HasPrefix(gb.BaseName, want+"@") {
		add("the build stage is FROM %s; go.mod asks for Go %s, so use %s (or a variant of it)", gb.BaseName, pb.GoVersion, want)
	}
	if gb.Env["GOTOOLCHAIN"] != "local" {
		add("the build must set GOTOOLCHAIN=local, so the image's Go %s is the one that builds", pb.GoVersion)
	}
	if gb.Flags["-trimpath"] != "true" {
		add("go build needs -trimpath (reproducible, no build paths in the binary)")
	}
	if len(gb.Packages) != 1 || gb.Packages[0] != pb.Package {
		add("go build builds %q; the Makefile builds %s", gb.Packages, pb.Package)
	}
	x := gb.XFlags()
	for sym := range pb.XFlags {
		if _, ok := x[sym]; !ok {
			add("the Makefile sets -X %s and the Dockerfile does not", sym)
		}
	}
	versionSet := false
	for sym, v := range x {
		if strings.HasSuffix(sym, ".Version") && v == buildArgs["VERSION"] {
			versionSet = true
		}
	}
	if !versionSet {
		add("the ldflags do not set a .Version from the VERSION build arg (-X ...=%s)", x)
	}
	if gb.Output == "" {
		add("go build has no -o")
	}

	if final.Name == gb.Stage {
		add("the image stage %s is the build stage; copy the binary into a small base instead", final.Name)
	}
	var user, entry string
	var copied bool
	labels := map[string]string{}
	env := map[string]string{}
	lex := shell.NewLex('\\')
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				env[kv.Key] = kv.ValueString()
				if v, ok := buildArgs[kv.Key]; ok {
					env[kv.Key] = v
				}
			}
		case *instructions.UserCommand:
			user = c.User
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				v, _, err := lex.ProcessWord(kv.Value, envList{env})
				if err != nil {
					add("LABEL %s: %v", kv.Key, err)
				}
				labels[kv.Key] = v
			}
		case *instructions.CopyCommand:
			if c.From == gb.Stage && slices.Contains(c.SourcePaths, gb.Output) {
				copied = true
				entry = c.DestPath
				if strings.HasSuffix(entry, "/") {
					entry = path.Join(entry, path.Base(gb.Output))
				}
			}
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				add("ENTRYPOINT must use the exec form, so signals reach ferry (SIGTERM lets activities checkpoint)")
			} else if len(c.CmdLine) == 0 || (entry != "" && c.CmdLine[0] != entry) {
				add("ENTRYPOINT %q does not run the copied binary %s", c.CmdLine, entry)
			}
		}
	}
	if !copied {
		add("the image stage %s does not COPY --from=%s %s", final.Name, gb.Stage, gb.Output)
	}
	uid, _, _ := strings.Cut(user, ":")
	if user == "" || uid == "root" || uid == "0" || !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid) {
		add("the image stage %s has USER %q; want a numeric non-root uid, so runAsNonRoot can verify it", final.Name, user)
	}
	for label, arg := range map[string]string{"org.opencontainers.image.version": "VERSION", "org.opencontainers.image.revision": "REVISION", "org.opencontainers.image.created": "CREATED"} {
		if labels[label] != buildArgs[arg] {
			add("LABEL %s is %q; want the %s build arg (%q)", label, labels[label], arg, buildArgs[arg])
		}
	}
	if labels["org.opencontainers.image.source"] == "" {
		add("LABEL org.opencontainers.image.source is missing")
	}
	return errs
}

// readFile is os.ReadFile with the path in the error.
func readFile(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}
