package project

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/runtime/image"
)

func TestUpPulls(t *testing.T) {
	tests := []struct {
		name    string
		compose string
		// have are the images the store has.
		have []string
		flag string
		// build is up --build.
		build bool
		want  []string // service:image, in order; "!" marks a pull whose failure is no error
		notes int
		err   string
	}{
		{
			name: "missing is pulled, present is not",
			compose: `
  a: {image: a}
  b: {image: b}`,
			have: []string{"b"},
			want: []string{"a:a"},
		},
		{
			name: "always pulls what is present; an image is pulled once",
			compose: `
  a: {image: a, pull_policy: always}
  b: {image: a}
  c: {image: c, pull_policy: if_not_present}`,
			have: []string{"a", "c"},
			want: []string{"a:a"},
		},
		{
			name: "never and build with the image present",
			compose: `
  a: {image: a, pull_policy: never}
  b: {image: b, pull_policy: build}`,
			have: []string{"a", "b"},
		},
		{
			name: "never with the image missing",
			compose: `
  a: {image: nosuch, pull_policy: never}`,
			err: `service "a": image "nosuch" is not in the local store and its pull_policy is never: pull it with 'berth pull a', or load it with 'berth image load'`,
		},
		{
			name: "build with the image missing and no build section",
			compose: `
  a: {image: app, pull_policy: build}`,
			err: `service "a": image "app" is not in the local store and its pull_policy is build, but the service has no build section: add one, or pull the image with 'berth pull --policy missing a'`,
		},
		{
			name: "buildable: missing is pulled, and may fail; never and build are left to the build",
			compose: `
  a: {image: a, build: .}
  b: {image: b, build: ., pull_policy: never}
  c: {image: c, build: ., pull_policy: build}
  d: {image: a}
  e: {build: .}`,
			want: []string{"a:a!"},
		},
		{
			name: "another service builds the image: its pull may fail",
			compose: `
  a: {image: shared}
  b: {image: shared, build: ., pull_policy: never}`,
			want: []string{"a:shared!"},
		},
		{
			name: "--build: the buildable ones pull nothing, even always",
			compose: `
  a: {image: a, build: ., pull_policy: always}
  b: {image: b}`,
			build: true,
			want:  []string{"b:b"},
		},
		{
			name: "daily pulls only what is missing, with a note",
			compose: `
  a: {image: a, pull_policy: daily}
  b: {image: b, pull_policy: every_12h}`,
			have:  []string{"a"},
			want:  []string{"b:b"},
			notes: 2,
		},
		{
			name: "--pull never overrides always",
			compose: `
  a: {image: a, pull_policy: always}
  b: {image: b}`,
			have: []string{"a"},
			flag: "never",
			err:  `service "b": image "b" is not in the local store and up --pull is never`,
		},
		{
			name: "--pull always overrides never",
			compose: `
  a: {image: a, pull_policy: never}`,
			have: []string{"a"},
			flag: "always",
			want: []string{"a:a"},
		},
		{
			name: "--pull policy keeps each service's",
			compose: `
  a: {image: a, pull_policy: never}
  b: {image: b}`,
			have: []string{"a", "b"},
			flag: "policy",
		},
		{
			name: "no image: left to the checks that follow",
			compose: `
  a: {build: .}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadCompose(t, "services:"+tt.compose+"\n")
			has := func(ref string) (bool, error) { return slices.Contains(tt.have, ref), nil }
			names := slices.Sorted(func(yield func(string) bool) {
				for n := range p.Services {
					if !yield(n) {
						return
					}
				}
			})
			jobs, notes, err := upPulls(p, names, imageFlags{Pull: tt.flag, Build: tt.build}, has)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range jobs {
				mark := ""
				if !j.failFast {
					mark = "!"
				}
				got = append(got, j.service+":"+j.ref+mark)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("pulls = %v, want %v", got, tt.want)
			}
			if len(notes) != tt.notes {
				t.Errorf("notes = %q, want %d", notes, tt.notes)
			}
		})
	}
}

func TestCheckPullFlag(t *testing.T) {
	for _, v := range []string{"", "policy", "always", "missing", "never"} {
		if err := checkPullFlag(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	err := checkPullFlag("sometimes")
	if err == nil || err.Error() != `--pull "sometimes": want "always", "missing", "never" or "policy"` {
		t.Errorf("err = %v", err)
	}
}

// imageEvents records a pull's or push's events.
type imageEvents struct {
	mu  sync.Mutex
	all []ImageEvent
}

func (r *imageEvents) add(ev ImageEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, ev)
}

// headers is the events of images, not of layers, as "service Kind text",
// sorted (pulls run in parallel).
func (r *imageEvents) headers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.all {
		if ev.Kind != LayerStep {
			out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", ev.Service, ev.Kind, ev.Text)))
		}
	}
	slices.Sort(out)
	return out
}

func (r *imageEvents) layerSteps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.all {
		if ev.Kind == LayerStep {
			n++
		}
	}
	return n
}

// testRegistry runs go-containerregistry's registry on loopback with the
// random image repo:tag on it, and returns its host:port.
func testRegistry(t *testing.T, repos ...string) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, repo := range repos {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	return host
}

func TestPull(t *testing.T) {
	host := testRegistry(t, "app:1")
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var evs imageEvents
	e := &Engine{images: store, progress: evs.add}
	p := loadCompose(t, fmt.Sprintf(`
services:
  web: {image: %[1]s/app:1}
  worker: {image: %[1]s/app:1}
  built: {build: .}
  pinned: {image: %[1]s/app:1, pull_policy: never}
`, host))

	if err := e.Pull(context.Background(), p, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"built Skipped No image to be pulled",
		"pinned Skipped",
		"web Pulled",
		"web Pulling",
		"worker Skipped Image is already being pulled by web",
	}
	if got := evs.headers(); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if evs.layerSteps() == 0 {
		t.Error("no layer progress")
	}
	if _, err := store.Resolve(host + "/app:1"); err != nil {
		t.Fatal(err)
	}

	// Present: pull pulls it again by default (nothing to download),
	// missing skips it, always pulls even never's; an unknown service is
	// refused.
	evs = imageEvents{}
	if err := e.Pull(context.Background(), p, PullOptions{Services: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	if got := evs.headers(); !slices.Equal(got, []string{"web Pulled", "web Pulling"}) {
		t.Errorf("events = %q", got)
	}
	for _, ev := range evs.all {
		if ev.Kind == LayerStep && ev.Layer.State != image.LayerExists {
			t.Errorf("layer %s: %s, want only Already exists", ev.Layer.ShortID(), ev.Layer.State)
		}
	}
	evs = imageEvents{}
	if err := e.Pull(context.Background(), p, PullOptions{Services: []string{"web"}, Policy: "missing"}); err != nil {
		t.Fatal(err)
	}
	if got := evs.headers(); !slices.Equal(got, []string{"web Skipped Image is already present locally"}) {
		t.Errorf("events = %q", got)
	}
	evs = imageEvents{}
	if err := e.Pull(context.Background(), p, PullOptions{Services: []string{"pinned"}, Policy: "always"}); err != nil {
		t.Fatal(err)
	}
	if got := evs.headers(); !slices.Equal(got, []string{"pinned Pulled", "pinned Pulling"}) {
		t.Errorf("events = %q", got)
	}
	if err := e.Pull(context.Background(), p, PullOptions{Services: []string{"nosuch"}}); !errors.Is(err, ErrNoSuchService) {
		t.Errorf("err = %v, want ErrNoSuchService", err)
	}
	if err := e.Pull(context.Background(), p, PullOptions{Policy: "never"}); err == nil || err.Error() != `--policy "never": want "missing" or "always"` {
		t.Errorf("err = %v", err)
	}
}

func TestPullFailures(t *testing.T) {
	host := testRegistry(t, "app:1")
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var evs imageEvents
	e := &Engine{images: store, progress: evs.add}
	p := loadCompose(t, fmt.Sprintf(`
services:
  web: {image: %[1]s/app:1}
  gone: {image: %[1]s/nosuch:2}
`, host))

	// The error names the file, the service, the image and the
	// registry's answer.
	err = e.Pull(context.Background(), p, PullOptions{Services: []string{"gone"}})
	if !errors.Is(err, image.ErrNotInRegistry) {
		t.Fatalf("err = %v, want ErrNotInRegistry", err)
	}
	want := fmt.Sprintf(`compose.yaml: service "gone": pull %s/nosuch:2: not found in the registry %s (the registry says 404 Not Found`, host, host)
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v\nwant %s…", err, want)
	}
	if got := evs.headers(); len(got) != 2 || !strings.HasPrefix(got[0], "gone Error pull ") || got[1] != "gone Pulling" {
		t.Errorf("events = %q", got)
	}

	// --ignore-pull-failures: what can be pulled is.
	evs = imageEvents{}
	if err := e.Pull(context.Background(), p, PullOptions{IgnoreFailures: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Resolve(host + "/app:1"); err != nil {
		t.Fatal(err)
	}

	// Interrupted: ctx's error, and the store is as it was.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Pull(ctx, p, PullOptions{Policy: "always", IgnoreFailures: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestUpPullsThroughEnsureImages(t *testing.T) {
	host := testRegistry(t, "app:1")
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var evs imageEvents
	var warnings []string
	e := &Engine{images: store, progress: evs.add, events: func(ev Event) { warnings = append(warnings, ev.Text) }}
	p := loadCompose(t, fmt.Sprintf(`
services:
  web: {image: %[1]s/app:1, pull_policy: weekly}
  never: {image: %[1]s/app:1, pull_policy: never}
`, host))
	// never alone, with the image missing: refused, naming the file.
	err = e.ensureImages(context.Background(), p, []string{"never"}, imageFlags{})
	if err == nil || !strings.HasPrefix(err.Error(), `compose.yaml: service "never": image "`+host+`/app:1" is not in the local store and its pull_policy is never`) {
		t.Fatalf("err = %v", err)
	}
	// web pulls it (weekly: when missing, with a note); never then has it.
	if err := e.ensureImages(context.Background(), p, []string{"web", "never"}, imageFlags{}); err != nil {
		t.Fatal(err)
	}
	if got := evs.headers(); !slices.Equal(got, []string{"web Pulled", "web Pulling"}) {
		t.Errorf("events = %q", got)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "pull_policy weekly") {
		t.Errorf("warnings = %q", warnings)
	}
	if err := e.ensureImages(context.Background(), p, []string{"never"}, imageFlags{Pull: "sometimes"}); err == nil {
		t.Error("--pull sometimes accepted")
	}
}
