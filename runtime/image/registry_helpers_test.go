package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry is go-containerregistry's registry on a loopback port, which
// counts the blob downloads and lets a test put a handler in front of it.
type testRegistry struct {
	host string
	// user and password, when set, are required (basic auth).
	user, password string

	mu sync.Mutex
	// gets counts the GETs of each blob, by digest.
	gets map[string]int
	// intercept, when set, serves a request instead of the registry if
	// it returns true.
	intercept func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	reg := &testRegistry{gets: map[string]int{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reg.user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != reg.user || p != reg.password {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		reg.mu.Lock()
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			reg.gets[path.Base(r.URL.Path)]++
		}
		intercept := reg.intercept
		reg.mu.Unlock()
		if intercept != nil && intercept(w, r, inner) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	reg.host = strings.TrimPrefix(srv.URL, "http://")
	return reg
}

// ref is the reference of repo (with a tag or a digest) on the registry.
func (r *testRegistry) ref(repo string) string { return r.host + "/" + repo }

func (r *testRegistry) setIntercept(f func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.intercept = f
}

// blobGets is how many times the blob h was downloaded.
func (r *testRegistry) blobGets(h v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[h.String()]
}

// allBlobGets is how many blob downloads there were.
func (r *testRegistry) allBlobGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.gets {
		n += c
	}
	return n
}

func (r *testRegistry) resetCounts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gets = map[string]int{}
}

func (r *testRegistry) remoteOpts() []remote.Option {
	if r.user == "" {
		return nil
	}
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: r.user, Password: r.password})}
}

// push puts img on the registry as repo ("app:1") with go-containerregistry's
// own client, independent of berth's.
func (r *testRegistry) push(t testing.TB, repo string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(r.ref(repo))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, r.remoteOpts()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func (r *testRegistry) pushIndex(t testing.TB, repo string, idx v1.ImageIndex) {
	t.Helper()
	ref, err := name.ParseReference(r.ref(repo))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, r.remoteOpts()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// dockerConfig points DOCKER_CONFIG at a new config.json whose auths hold
// user:password for host (none when user is empty).
func dockerConfig(t *testing.T, host, user, password string) {
	t.Helper()
	dir := t.TempDir()
	auths := map[string]any{}
	if user != "" {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

func pull(t testing.TB, s *Store, ref string, opts PullOptions) Image {
	t.Helper()
	img, err := s.Pull(context.Background(), ref, opts)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	return img
}

func digestOf(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func layerDigests(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func configDigest(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// indexImages is the store's images, by manifest digest.
func indexImages(t testing.TB, s *Store) map[string]*imageRecord {
	t.Helper()
	idx, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	return idx.Images
}

// events records a pull's or push's progress events.
type events struct {
	mu  sync.Mutex
	all []LayerEvent
}

func (e *events) add(ev LayerEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// states is the distinct successive states of layer h.
func (e *events) states(h v1.Hash) []LayerState {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []LayerState
	for _, ev := range e.all {
		if ev.Layer == h && (len(out) == 0 || out[len(out)-1] != ev.State) {
			out = append(out, ev.State)
		}
	}
	return out
}
