package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layerTar is a small layer with one file.
func layerTar(t testing.TB, file, body string) []byte {
	return makeTar(t, dir(path.Dir(file)+"/"), entry{name: file, typ: '0', body: body, mode: 0o644})
}

func TestPullSkipsPresentLayers(t *testing.T) {
	reg := newTestRegistry(t)
	base, mid, top := layerTar(t, "etc/base", "base\n"), layerTar(t, "etc/mid", "mid\n"), layerTar(t, "app/top", "top\n")
	a := ggcrImage(t, runtime.GOARCH, []string{"a"}, base, mid)
	b := ggcrImage(t, runtime.GOARCH, []string{"b"}, base, mid, top)
	reg.push(t, "a:1", a)
	reg.push(t, "b:1", b)
	s := newStore(t)

	var evA events
	imgA := pull(t, s, reg.ref("a:1"), PullOptions{Progress: evA.add})
	if imgA.ID != configDigest(t, a).String() || imgA.Ref != reg.ref("a:1") || len(imgA.DiffIDs) != 2 {
		t.Fatalf("pulled %+v", imgA)
	}
	if got := reg.allBlobGets(); got != 3 {
		t.Errorf("%d blob downloads for a, want 3 (config and two layers)", got)
	}
	first := layerDigests(t, a)[0]
	want := []LayerState{LayerWaiting, LayerDownloading, LayerVerifying, LayerDownloaded, LayerExtracting, LayerDone}
	if got := evA.states(first); !slices.Equal(got, want) {
		t.Errorf("events of a layer: %v, want %v", got, want)
	}

	reg.resetCounts()
	var evB events
	imgB := pull(t, s, reg.ref("b:1"), PullOptions{Progress: evB.add})
	bl := layerDigests(t, b)
	if got := reg.allBlobGets(); got != 2 || reg.blobGets(bl[2]) != 1 {
		t.Errorf("%d blob downloads for b (top %d), want 2: its config and its top layer", got, reg.blobGets(bl[2]))
	}
	if got := evB.states(bl[0]); !slices.Equal(got, []LayerState{LayerExists}) {
		t.Errorf("events of a present layer: %v", got)
	}
	if got := layerCount(t, s); got != 3 {
		t.Errorf("%d layers unpacked, want 3", got)
	}
	dirs, err := s.LayerDirs(imgB)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLayerFile(t, dirs[2], "app/top"); got != "top\n" {
		t.Errorf("app/top = %q", got)
	}

	// Warm: the store has the image; nothing is downloaded.
	reg.resetCounts()
	var evWarm events
	again := pull(t, s, reg.ref("b:1"), PullOptions{Progress: evWarm.add})
	if again.ID != imgB.ID || reg.allBlobGets() != 0 {
		t.Errorf("warm pull: %s, %d blob downloads", again.ID, reg.allBlobGets())
	}
	for _, l := range bl {
		if got := evWarm.states(l); !slices.Equal(got, []LayerState{LayerExists}) {
			t.Errorf("warm pull, layer %s: %v", l, got)
		}
	}

	// The same base layer compressed otherwise (same diff ID, another
	// blob) is not downloaded either: the store has it unpacked.
	baseBest, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(base)), nil
	}, tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		t.Fatal(err)
	}
	c, err := mutate.AppendLayers(empty.Image, baseBest)
	if err != nil {
		t.Fatal(err)
	}
	reg.push(t, "c:1", c)
	cl := layerDigests(t, c)
	if cl[0] == bl[0] {
		t.Fatal("the test needs the base layer compressed otherwise")
	}
	reg.resetCounts()
	imgC := pull(t, s, reg.ref("c:1"), PullOptions{})
	if reg.blobGets(cl[0]) != 0 || imgC.DiffIDs[0] != imgA.DiffIDs[0] {
		t.Errorf("layer present by diff ID downloaded %d times", reg.blobGets(cl[0]))
	}
	// The store keeps a's blob for that layer: pushing c sends it, under a
	// manifest of c's config.
	if _, err := s.Push(context.Background(), reg.ref("c:1"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	m, _ := remoteManifest(t, reg.ref("c:1"))
	if m.Layers[0].Digest != bl[0] || m.Config.Digest != configDigest(t, c) {
		t.Errorf("pushed c as %+v", m)
	}
	sameImage(t, pull(t, newStore(t), reg.ref("c:1"), PullOptions{}), imgC)
}

func TestPullMultiPlatform(t *testing.T) {
	reg := newTestRegistry(t)
	arches := []string{"s390x", runtime.GOARCH, "riscv64"}
	var adds []mutate.IndexAddendum
	imgs := map[string]v1.Image{}
	for _, arch := range arches {
		img := ggcrImage(t, arch, []string{arch}, layerTar(t, "etc/arch", arch))
		imgs[arch] = img
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	reg.pushIndex(t, "multi:1", idx)
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}

	s := newStore(t)
	img := pull(t, s, reg.ref("multi:1"), PullOptions{})
	if img.ID != configDigest(t, imgs[runtime.GOARCH]).String() || !slices.Equal(img.Config.Cmd, []string{runtime.GOARCH}) {
		t.Errorf("pulled %s %v, want the %s image", img.ID, img.Config.Cmd, runtime.GOARCH)
	}
	for _, arch := range arches {
		n := reg.blobGets(layerDigests(t, imgs[arch])[0])
		if (arch == runtime.GOARCH) != (n == 1) {
			t.Errorf("the %s layer was downloaded %d times", arch, n)
		}
	}
	// The index's digest names the image, as docker's RepoDigests.
	byIndex := reg.ref("multi@" + idxDigest.String())
	if !slices.Contains(img.Digests, byIndex) {
		t.Errorf("Digests = %q, want %s", img.Digests, byIndex)
	}
	if got, err := s.Resolve(byIndex); err != nil || got.ID != img.ID {
		t.Errorf("Resolve(%s) = %s, %v", byIndex, got.ID, err)
	}

	other := newStore(t)
	s390 := pull(t, other, reg.ref("multi:1"), PullOptions{Platform: "linux/s390x"})
	if s390.ID != configDigest(t, imgs["s390x"]).String() {
		t.Errorf("--platform linux/s390x pulled %v", s390.Config.Cmd)
	}

	// An image of one platform must be of the one asked for.
	single := ggcrImage(t, "s390x", nil, layerTar(t, "etc/one", "one\n"))
	reg.push(t, "single:1", single)
	_, err = other.Pull(context.Background(), reg.ref("single:1"), PullOptions{Platform: "linux/riscv64"})
	if err == nil || !strings.Contains(err.Error(), "the image is for linux/s390x, not for linux/riscv64") {
		t.Errorf("err = %v", err)
	}
	pull(t, other, reg.ref("single:1"), PullOptions{Platform: "linux/s390x"})
	if _, err := other.Pull(context.Background(), reg.ref("single:1"), PullOptions{Platform: "linux/riscv64"}); err == nil {
		t.Error("a present image of another platform was accepted")
	}

	none := newStore(t)
	_, err = none.Pull(context.Background(), reg.ref("multi:1"), PullOptions{Platform: "linux/mips64"})
	if err == nil || !strings.Contains(err.Error(), "no image for linux/mips64 (it has linux/s390x, linux/"+runtime.GOARCH+", linux/riscv64)") {
		t.Errorf("err = %v", err)
	}
	if files := storeFiles(t, none); len(files) != 0 {
		t.Errorf("left behind: %q", files)
	}
}

func TestPullByDigest(t *testing.T) {
	reg := newTestRegistry(t)
	img := ggcrImage(t, runtime.GOARCH, []string{"pinned"}, layerTar(t, "etc/pinned", "yes\n"))
	reg.push(t, "app:1", img)
	d := digestOf(t, img)

	for _, ref := range []string{reg.ref("app@" + d.String()), reg.ref("app:ignored@" + d.String())} {
		s := newStore(t)
		got := pull(t, s, ref, PullOptions{})
		if got.ID != configDigest(t, img).String() || got.Ref != "" || len(got.Tags) != 0 {
			t.Errorf("pull %s = %+v", ref, got)
		}
		byDigest := reg.ref("app@" + d.String())
		if !slices.Equal(got.Digests, []string{byDigest}) {
			t.Errorf("Digests = %q", got.Digests)
		}
		if r, err := s.Resolve(byDigest); err != nil || r.ID != got.ID {
			t.Errorf("Resolve(%s) = %s, %v", byDigest, r.ID, err)
		}
	}

	s := newStore(t)
	unknown := reg.ref("app@sha256:" + strings.Repeat("0", 64))
	_, err := s.Pull(context.Background(), unknown, PullOptions{})
	if !errors.Is(err, ErrNotInRegistry) {
		t.Errorf("pull of an unknown digest: %v", err)
	}

	// A registry that serves other content under the digest is refused.
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Docker-Content-Digest")
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(append(rec.Body.Bytes(), ' '))
		return true
	})
	_, err = s.Pull(context.Background(), reg.ref("app@"+d.String()), PullOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("a manifest of the wrong digest: %v", err)
	}
	if files := storeFiles(t, s); len(files) != 0 {
		t.Errorf("left behind: %q", files)
	}
}

func TestPullCorruptBlob(t *testing.T) {
	img := ggcrImage(t, runtime.GOARCH, []string{"x"}, layerTar(t, "etc/a", strings.Repeat("a", 5000)), layerTar(t, "etc/b", "b\n"))
	layers := layerDigests(t, img)
	for _, tc := range []struct {
		name   string
		blob   v1.Hash
		mangle func([]byte) []byte
		want   string
	}{
		{"flipped layer", layers[0], func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, "hashes to sha256:"},
		{"truncated layer", layers[0], func(b []byte) []byte { return b[:len(b)-10] }, "sent fewer bytes than the"},
		{"longer layer", layers[1], func(b []byte) []byte { return append(b, 0) }, "sent more bytes than the"},
		{"flipped config", configDigest(t, img), func(b []byte) []byte { b[0] ^= 0xff; return b }, "hashes to sha256:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			reg.push(t, "app:1", img)
			reg.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+tc.blob.String()) {
					return false
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				w.WriteHeader(rec.Code)
				w.Write(tc.mangle(rec.Body.Bytes()))
				return true
			})
			s := newStore(t)
			_, err := s.Pull(context.Background(), reg.ref("app:1"), PullOptions{})
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("err = %v, want ErrDigestMismatch", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.blob.String()) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("message %q should name the blob and say %q, on one line", msg, tc.want)
			}
			if len(indexImages(t, s)) != 0 || layerCount(t, s) != 0 {
				t.Error("an image or a layer was stored")
			}
			for _, f := range storeFiles(t, s) {
				if strings.HasPrefix(f, tmpDir+"/") || f == blobsDir+"/"+tc.blob.Hex {
					t.Errorf("left behind: %s", f)
				}
			}
		})
	}
}

func TestPullRejectsEscapingLayer(t *testing.T) {
	reg := newTestRegistry(t)
	evil := makeTar(t, file("../escape", "x"))
	reg.push(t, "evil:1", ggcrImage(t, runtime.GOARCH, nil, evil))
	s := newStore(t)
	_, err := s.Pull(context.Background(), reg.ref("evil:1"), PullOptions{})
	if !errors.Is(err, ErrBadArchive) || !strings.Contains(err.Error(), "path escapes the layer") {
		t.Fatalf("err = %v", err)
	}
	if len(indexImages(t, s)) != 0 || layerCount(t, s) != 0 {
		t.Error("an image or a layer was stored")
	}
}

func TestPullResumesAfterInterruption(t *testing.T) {
	reg := newTestRegistry(t)
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, to cut in the middle
	img := ggcrImage(t, runtime.GOARCH, []string{"x"}, layerTar(t, "etc/a", "a\n"), layerTar(t, "etc/b", "b\n"), layerTar(t, "etc/big", big))
	reg.push(t, "app:1", img)
	layers := layerDigests(t, img)

	blocked := make(chan struct{})
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+layers[2].String()) {
			return false
		}
		select {
		case <-blocked:
			return false // only the first download hangs
		default:
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		close(blocked)
		<-r.Context().Done()
		return true
	})

	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	downloaded := make(chan v1.Hash, 8)
	done := make(chan error, 1)
	go func() {
		_, err := s.Pull(ctx, reg.ref("app:1"), PullOptions{Jobs: 3, Progress: func(ev LayerEvent) {
			if ev.State == LayerDownloaded {
				downloaded <- ev.Layer
			}
		}})
		done <- err
	}()
	deadline := time.After(20 * time.Second)
	for waiting := 2; waiting > 0; waiting-- {
		select {
		case <-downloaded:
		case err := <-done:
			t.Fatalf("pull ended early: %v", err)
		case <-deadline:
			t.Fatal("the small layers did not download")
		}
	}
	select {
	case <-blocked:
	case <-deadline:
		t.Fatal("the big layer did not start")
	}
	cancel() // Ctrl-C
	var err error
	select {
	case err = <-done:
	case <-deadline:
		t.Fatal("pull did not stop when cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(indexImages(t, s)) != 0 || layerCount(t, s) != 0 {
		t.Error("the interrupted pull stored an image or a layer")
	}
	files := storeFiles(t, s)
	for _, f := range files {
		if strings.HasPrefix(f, tmpDir+"/") || f == blobsDir+"/"+layers[2].Hex {
			t.Errorf("left behind: %s", f)
		}
	}
	for _, l := range layers[:2] {
		if !slices.Contains(files, blobsDir+"/"+l.Hex) {
			t.Errorf("the completed blob %s was not kept", l)
		}
	}

	got := pull(t, s, reg.ref("app:1"), PullOptions{})
	if got.ID != configDigest(t, img).String() {
		t.Fatalf("pulled %s", got.ID)
	}
	for i, want := range []int{1, 1, 2} {
		if n := reg.blobGets(layers[i]); n != want {
			t.Errorf("layer %d downloaded %d times, want %d", i, n, want)
		}
	}
	if n := reg.blobGets(configDigest(t, img)); n != 1 {
		t.Errorf("config downloaded %d times, want 1", n)
	}
	dirs, err := s.LayerDirs(got)
	if err != nil {
		t.Fatal(err)
	}
	if readLayerFile(t, dirs[2], "etc/big") != big {
		t.Error("etc/big differs")
	}
	for _, f := range storeFiles(t, s) {
		if strings.HasPrefix(f, tmpDir+"/") {
			t.Errorf("left behind: %s", f)
		}
	}
}

func TestConcurrentPulls(t *testing.T) {
	reg := newTestRegistry(t)
	img := ggcrImage(t, runtime.GOARCH, []string{"x"}, layerTar(t, "etc/a", "a\n"), layerTar(t, "etc/b", "b\n"))
	reg.push(t, "app:1", img)
	reg.push(t, "none:1", ggcrImage(t, runtime.GOARCH, []string{"no layers"}))
	s := newStore(t)
	refs := []string{"app:1", "app:1", "app:1", "none:1"}
	errs := make(chan error, len(refs))
	for _, ref := range refs {
		go func() {
			_, err := s.Pull(context.Background(), reg.ref(ref), PullOptions{})
			errs <- err
		}()
	}
	for range refs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	got, err := s.Resolve(reg.ref("app:1"))
	if err != nil || got.ID != configDigest(t, img).String() {
		t.Fatalf("Resolve = %s, %v", got.ID, err)
	}
	if n := layerCount(t, s); n != 2 {
		t.Errorf("%d layers", n)
	}
	none, err := s.Resolve(reg.ref("none:1"))
	if err != nil || len(none.DiffIDs) != 0 {
		t.Errorf("image of no layers: %+v, %v", none, err)
	}
	for _, f := range storeFiles(t, s) {
		if strings.HasPrefix(f, tmpDir+"/") {
			t.Errorf("left behind: %s", f)
		}
	}
}
