package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// TestMain lets the test binary play berth's hidden roles: the runtime
// re-executes /proc/self/exe, this binary, as a container's monitor and
// init.
func TestMain(m *testing.M) {
	runtime.Reexec(runtime.Roles{})
	os.Exit(m.Run())
}

// testEnv is a store holding busybox:latest (from busybox-static) and a
// runtime, each under the test's own folder.
type testEnv struct {
	store *image.Store
	rt    *runtime.Runtime
	dir   string
}

var (
	rootfsOnce sync.Once
	rootfsTar  []byte
)

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	imagetest.NeedRoot(t)
	imagetest.NeedBusybox(t)
	rootfsOnce.Do(func() { rootfsTar = imagetest.RootfsTar(t) })
	dir := t.TempDir()
	store, err := image.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(filepath.Join(dir, "containers"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), bytes.NewReader(rootfsTar), "busybox", image.ImportOptions{
		Changes: []string{"ENV PATH=/bin", `CMD ["sh"]`},
	}); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{store: store, rt: rt, dir: dir}
	t.Cleanup(func() {
		// No build leaves a container behind, failed or not.
		list, err := rt.List()
		if err != nil {
			t.Error(err)
		}
		for _, c := range list {
			if c.Spec.Labels[labelBuild] != "" {
				t.Errorf("build container %s left behind (%s)", c.Spec.Name, c.State.Status)
			}
			rt.Delete(context.Background(), c.Spec.Name)
		}
	})
	return e
}

// writeFiles writes files (path → content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newContext makes a build context of files, the Dockerfile among them.
func newContext(t testing.TB, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctx")
	writeFiles(t, dir, files)
	writeFiles(t, dir, map[string]string{"Dockerfile": dockerfile})
	return dir
}

// build builds with opts (ContextDir and Output set by the caller or
// here) and returns the image, the progress output and the error.
func (e *testEnv) build(t testing.TB, opts Options) (image.Image, string, error) {
	t.Helper()
	var out bytes.Buffer
	opts.Output = &out
	if opts.Pull == PullMissing {
		opts.Pull = PullNever
	}
	img, err := Build(context.Background(), e.store, e.rt, opts)
	return img, out.String(), err
}

// mustBuild is build for a build that must succeed.
func (e *testEnv) mustBuild(t testing.TB, opts Options) (image.Image, string) {
	t.Helper()
	img, out, err := e.build(t, opts)
	if err != nil {
		t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	return img, out
}

// runImage runs img's command as its user, or args as root, in a
// container and returns its output and exit code.
func (e *testEnv) runImage(t testing.TB, img image.Image, args ...string) (string, int) {
	t.Helper()
	layers, err := e.store.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	if len(args) == 0 {
		args = append(append([]string{}, img.Config.Entrypoint...), img.Config.Cmd...)
		user = img.Config.User
	}
	name := "test-run-" + randomHex(4)
	spec := runtime.Spec{Name: name, Layers: layers, Args: args, Env: img.Config.Env, Cwd: img.Config.WorkingDir, User: user}
	ctx := context.Background()
	if _, err := e.rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rt.Delete(context.Background(), name) })
	if err := e.rt.Start(ctx, name); err != nil {
		t.Fatalf("run %q: %v", args, err)
	}
	var out strings.Builder
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = e.rt.ReadLogs(tctx, name, runtime.LogOptions{Tail: -1, Follow: true}, func(l runtime.LogEntry) error {
		out.Write(l.Text)
		out.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.rt.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), c.State.ExitCode
}

// steps are the lines of out that end a step: "DONE …", "CACHED", "ERROR…",
// keyed by the step's header.
func steps(out string) map[string]string {
	headers := map[string]string{}
	res := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		num, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(num, "#") {
			continue
		}
		if _, seen := headers[num]; !seen {
			headers[num] = rest
			continue
		}
		switch {
		case strings.HasPrefix(rest, "DONE"), rest == "CACHED", strings.HasPrefix(rest, "ERROR"):
			res[headers[num]] = strings.Fields(rest)[0]
		}
	}
	return res
}

// printed reports whether a step of the progress out printed line.
func printed(out, line string) bool {
	return regexp.MustCompile(`(?m)^#\d+ \d+\.\d+ ` + regexp.QuoteMeta(line) + `$`).MatchString(out)
}
