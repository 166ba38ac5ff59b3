package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
)

// Bad input: each error names the file and line (or the stage), says what
// is wrong, and is of its sentinel; none leaves a container behind (see
// newEnv's cleanup).
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name       string
		dockerfile string
		opts       Options
		sentinel   error
		want       []string
	}{
		{"unknown instruction", "FROM busybox\nRUN true\nFROBNICATE x\n", Options{}, ErrDockerfile,
			[]string{"Dockerfile:3:", "unknown instruction: FROBNICATE"}},
		{"malformed", "FROM busybox\nCOPY onlyone\n", Options{}, ErrDockerfile,
			[]string{"Dockerfile:2:", "COPY requires at least two arguments"}},
		{"no FROM", "RUN true\n", Options{}, ErrDockerfile,
			[]string{"Dockerfile:1:", "must start with FROM"}},
		{"outside the context", "FROM busybox\nCOPY ../secret /x\n", Options{}, ErrOutsideContext,
			[]string{"Dockerfile:2:", "[2/2] COPY ../secret /x", "outside the build context", `"../secret"`}},
		{"missing source", "FROM busybox\nWORKDIR /tmp\nCOPY present.txt nothere.txt /x/\n", Options{}, ErrSourceNotFound,
			[]string{"Dockerfile:3:", `"nothere.txt" not found in the build context`}},
		{"glob of nothing", "FROM busybox\nCOPY *.nope /x/\n", Options{}, ErrSourceNotFound,
			[]string{"Dockerfile:2:", `no file in the build context matches "*.nope"`}},
		{"ignored source", "FROM busybox\nCOPY ignored.txt /x\n", Options{}, ErrSourceNotFound,
			[]string{"Dockerfile:2:", `"ignored.txt" is excluded by .dockerignore`}},
		{"failing RUN", "FROM busybox\nRUN echo partial > /partial && exit 3\n", Options{}, ErrRunFailed,
			[]string{"Dockerfile:2:", "[2/2] RUN echo partial > /partial && exit 3", `process "/bin/sh -c echo partial > /partial && exit 3" did not complete successfully: exit code 3`}},
		{"RUN of no such program", "FROM busybox\nRUN [\"/nosuch\", \"x\"]\n", Options{}, ErrRunFailed,
			[]string{"Dockerfile:2:", `"/nosuch x"`, "exit code 127"}},
		{"unknown --from", "FROM busybox AS one\nFROM busybox\nCOPY --from=nosuch /a /b\n", Options{}, ErrUnknownStage,
			[]string{"Dockerfile:3:", "--from=nosuch: no stage of that name (stages: one, 1)"}},
		{"--from a later stage", "FROM busybox\nCOPY --from=later /a /b\nFROM busybox AS later\n", Options{Target: "0"}, ErrUnknownStage,
			[]string{"Dockerfile:2:", "--from=later: the stage is not defined before this one"}},
		{"unknown target", "FROM busybox AS one\n", Options{Target: "two"}, ErrUnknownStage,
			[]string{`target stage "two" could not be found (stages: one)`}},
		{"missing base image", "FROM nosuch/image:1\n", Options{}, image.ErrNotFound,
			[]string{"Dockerfile:1:", "FROM nosuch/image:1", "does not pull"}},
		{"foreign platform", "FROM --platform=linux/s390x busybox\n", Options{}, nil,
			[]string{"Dockerfile:1:", "--platform=linux/s390x: berth builds for the host's platform"}},
		{"unsupported RUN flag", "FROM busybox\nRUN --mount=type=cache,target=/c true\n", Options{}, ErrDockerfile,
			[]string{"Dockerfile:2:", "RUN --mount is not supported"}},
		{"bad chmod", "FROM busybox\nCOPY --chmod=u+x present.txt /\n", Options{}, ErrDockerfile,
			[]string{"Dockerfile:2:", "--chmod=u+x"}},
		{"unknown chown user", "FROM busybox\nCOPY --chown=nobody2 present.txt /\n", Options{}, nil,
			[]string{"Dockerfile:2:", `no user "nobody2" in the image's /etc/passwd`}},
		{"several sources to a file", "FROM busybox\nCOPY present.txt ignored2.txt /x\n", Options{}, ErrDockerfile,
			[]string{"Dockerfile:2:", "the destination must be a directory and end with a /"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := newContext(t, c.dockerfile, map[string]string{"present.txt": "p", "ignored.txt": "i", "ignored2.txt": "j", ".dockerignore": "ignored.txt\n"})
			layersBefore := layerCount(t, e.store)
			opts := c.opts
			opts.ContextDir = dir
			_, out, err := e.build(t, opts)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			t.Log(err)
			if c.sentinel != nil && !errors.Is(err, c.sentinel) {
				t.Errorf("error %v is not %v", err, c.sentinel)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error of several lines: %q", err)
			}
			if n := layerCount(t, e.store); n != layersBefore {
				t.Errorf("the failed build left %d layers in the store", n-layersBefore)
			}
		})
	}
}

func layerCount(t testing.TB, s *image.Store) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "layers"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// A build cancelled in the middle of a RUN (Ctrl-C) returns at once,
// removes the step's container, and leaves the store with nothing in its
// work folders; the next build works.
func TestCancelDuringRun(t *testing.T) {
	e := newEnv(t)
	dir := newContext(t, "FROM busybox\nRUN echo started && sleep 30\n", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan error, 1)
	go func() {
		_, err := Build(ctx, e.store, e.rt, Options{ContextDir: dir, Output: pw, Pull: PullNever})
		pw.Close()
		done <- err
	}()
	// Cancel once the command runs.
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), " started\n") {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("the build ended before its RUN started: %v\n%s", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	start := time.Now()
	cancel()
	go func() {
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled build: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the cancelled build did not return")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancel took %v", took)
	}
	list, err := e.rt.List()
	if err != nil || len(list) != 0 {
		t.Errorf("containers after cancel: %v %v", list, err)
	}
	entries, err := os.ReadDir(filepath.Join(e.store.Dir(), "tmp"))
	if err != nil || len(entries) != 0 {
		t.Errorf("store work folders after cancel: %v %v", entries, err)
	}
	if _, err := e.store.Resolve("busybox"); err != nil {
		t.Errorf("store after cancel: %v", err)
	}
	dir2 := newContext(t, "FROM busybox\nRUN echo again\n", nil)
	e.mustBuild(t, Options{ContextDir: dir2})
}

// A RUN container whose builder was killed is removed by the next build.
func TestStaleRunContainerRemoved(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	labels := builderLabels()
	labels[labelBuilderPID] = "4194305" // above any pid_max: dead
	if _, err := e.rt.Create(ctx, runtime.Spec{Name: "berth-build-stale", Labels: labels, Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	mine := builderLabels()
	if _, err := e.rt.Create(ctx, runtime.Spec{Name: "berth-build-live", Labels: mine, Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	dir := newContext(t, "FROM busybox\n", nil)
	e.mustBuild(t, Options{ContextDir: dir})
	if _, err := e.rt.Get("berth-build-stale"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stale build container: %v", err)
	}
	if _, err := e.rt.Get("berth-build-live"); err != nil {
		t.Errorf("a live builder's container was removed: %v", err)
	}
	e.rt.Delete(ctx, "berth-build-live")
}
