package build

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"

	"github.com/berth-dev/berth/runtime/image"
)

func TestParseErrors(t *testing.T) {
	cases := []struct {
		dockerfile, want string
	}{
		{"FROM a\nRUN x\nBOGUS y\n", "Dockerfile:3: invalid Dockerfile: unknown instruction: BOGUS"},
		{"FROM a\nCOPYY x y\n", "Dockerfile:2: invalid Dockerfile: unknown instruction: COPYY (did you mean COPY?)"},
		{"FROM a b c d\n", "Dockerfile:1: invalid Dockerfile: FROM requires either one or three arguments"},
		{"FROM a AS 1bad\n", `Dockerfile:1: invalid Dockerfile: invalid name for build stage: "1bad", name can't start with a number or contain symbols`},
		{"FROM a\n\nHEALTHCHECK --interval=x CMD true\n", `Dockerfile:3: invalid Dockerfile: time: invalid duration "x"`},
		{"FROM a\nSHELL sh -c\n", "Dockerfile:2: invalid Dockerfile: SHELL requires the arguments to be in JSON form"},
		{"ARG X\n", "Dockerfile: invalid Dockerfile: no FROM instruction"},
		{"# only a comment\n", "Dockerfile:1: invalid Dockerfile: file with no instructions"},
		{"FROM a\nENV\n", "Dockerfile:2: invalid Dockerfile: ENV requires at least one argument"},
	}
	for _, c := range cases {
		_, err := parseDockerfile("Dockerfile", "", []byte(c.dockerfile))
		if err == nil {
			t.Errorf("%q: no error", c.dockerfile)
			continue
		}
		if !errors.Is(err, ErrDockerfile) {
			t.Errorf("%q: %v is not ErrDockerfile", c.dockerfile, err)
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got %q\nwant %q", c.dockerfile, err, c.want)
		}
	}
}

// testBuilder is a builder of dockerfile with build args, for the pure
// parts: args and expansion.
func testBuilder(t *testing.T, dockerfile string, args map[string]string) *builder {
	t.Helper()
	df, err := parseDockerfile("Dockerfile", "", []byte(dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{df: df, opts: Options{Args: args}, lex: shell.NewLex(df.escape), used: map[string]bool{}}
	if b.global, err = b.globalArgs(); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestArgs(t *testing.T) {
	b := testBuilder(t, `
ARG BASE=alpine
ARG TAG=${BASE}-1
ARG UNSET
FROM ${BASE}:${TAG}
ARG TAG
ARG LOCAL=$TAG-local
ARG FROMBUILD=default
ARG UNSET
RUN true
`, map[string]string{"FROMBUILD": "given", "BASE": "debian", "HTTP_PROXY": "http://proxy:3128", "NEVER": "x"})
	if got, _ := b.expandWord(b.df.stages[0].BaseName, b.global); got != "debian:debian-1" {
		t.Errorf("FROM expands to %q", got)
	}
	if got, _ := b.global.Get("TARGETOS"); got != "linux" {
		t.Errorf("TARGETOS %q", got)
	}
	st := &stage{env: envList{"PATH=/bin"}}
	var words []string
	for _, cmd := range b.df.stages[0].Commands {
		a, ok := cmd.(*instructions.ArgCommand)
		if !ok {
			continue
		}
		createdBy, _, err := b.metadata(st, a)
		if err != nil {
			t.Fatal(err)
		}
		words = append(words, createdBy)
	}
	want := "ARG TAG=debian-1|ARG LOCAL=debian-1-local|ARG FROMBUILD=given|ARG UNSET"
	if strings.Join(words, "|") != want {
		t.Errorf("ARGs:\n got %s\nwant %s", strings.Join(words, "|"), want)
	}
	if env := b.runEnv(st); fmt.Sprint(env) != "[PATH=/bin TAG=debian-1 LOCAL=debian-1-local FROMBUILD=given HTTP_PROXY=http://proxy:3128]" {
		t.Errorf("RUN env %v", env)
	}
	// The ARGs are part of a RUN's history, the proxy is not.
	st.cf = testConfig("PATH=/bin")
	if got := runString([]string{"/bin/sh", "-c", "make"}, st); got != "|3 TAG=debian-1 LOCAL=debian-1-local FROMBUILD=given /bin/sh -c make" {
		t.Errorf("RUN history %q", got)
	}
	if unused := b.unusedArgs(); fmt.Sprint(unused) != "[NEVER]" {
		t.Errorf("unused %v", unused)
	}
}

func TestDockerignoreRules(t *testing.T) {
	pm, err := patternmatcher.New([]string{"*.log", "build", "docs/**/*.md", "!docs/keep/*.md"})
	if err != nil {
		t.Fatal(err)
	}
	ex := excluder(pm)
	for rel, want := range map[string]exclusion{
		"a.log":               traversed,
		"src/a.log":           included, // *.log is anchored at the root
		"build":               traversed,
		"build/x":             traversed,
		"docs/a/b.md":         traversed,
		"docs/keep/readme.md": included,
		"main.go":             included,
	} {
		if got := ex(rel); got != want {
			t.Errorf("%s: %v, want %v", rel, got, want)
		}
	}
	pm, _ = patternmatcher.New([]string{"build"})
	if got := excluder(pm)("build/x"); got != excluded {
		t.Errorf("without exceptions build/x is %v", got)
	}
}

func TestExposedPortsAndSignals(t *testing.T) {
	for in, want := range map[string]string{
		"80":          "[80/tcp]",
		"53/udp":      "[53/udp]",
		"8000-8002":   "[8000/tcp 8001/tcp 8002/tcp]",
		"90/SCTP":     "[90/sctp]",
		"0":           "error",
		"70000":       "error",
		"80/quic":     "error",
		"9-8":         "error",
		"http":        "error",
		"8000-8002/x": "error",
	} {
		got, err := image.ExposedPorts(in)
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != want {
			t.Errorf("EXPOSE %s: %s, want %s", in, s, want)
		}
	}
	for _, ok := range []string{"SIGTERM", "term", "9", "SIGRTMIN+3"} {
		if err := checkSignal(ok); err != nil {
			t.Errorf("STOPSIGNAL %s: %v", ok, err)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "65", ""} {
		if err := checkSignal(bad); err == nil {
			t.Errorf("STOPSIGNAL %q accepted", bad)
		}
	}
}

func TestCopyHistoryLine(t *testing.T) {
	r := copyRequest{name: "COPY", from: "build", chown: "app", chmod: "0644"}
	r.src.SourcePaths = []string{"a", "b*"}
	if got := r.createdBy("/app", true); got != "COPY --from=build --chown=app --chmod=0644 a b* /app/" {
		t.Errorf("%q", got)
	}
	if cacheKey("p", "COPY a /b", "x") == cacheKey("p", "COPY a /b", "y") || cacheKey("p", "X", "") == cacheKey("q", "X", "") {
		t.Error("cache keys do not tell steps apart")
	}
}

func testConfig(env ...string) *v1.ConfigFile {
	return &v1.ConfigFile{Config: v1.Config{Env: env}}
}
