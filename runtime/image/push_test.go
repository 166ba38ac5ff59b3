package image

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// remoteManifest is the manifest the registry serves for ref.
func remoteManifest(t testing.TB, ref string) (*v1.Manifest, v1.Hash) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m, digestOf(t, img)
}

// dockerSave is a docker save tarball of img tagged ref.
func dockerSave(t testing.TB, img v1.Image, ref string) []byte {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sameImage(t testing.TB, a, b Image) {
	t.Helper()
	if a.ID != b.ID || !slices.Equal(a.DiffIDs, b.DiffIDs) || !slices.Equal(a.Config.Cmd, b.Config.Cmd) || a.Size != b.Size {
		t.Errorf("images differ:\n%+v\n%+v", a, b)
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := newTestRegistry(t)
	src := newStore(t)
	base, app := layerTar(t, "etc/base", "base\n"), layerTar(t, "app/run", "run\n")
	imgs := load(t, src, dockerSave(t, ggcrImage(t, runtime.GOARCH, []string{"/app/run"}, base, app), "app:1"))
	orig := imgs[0]
	target := reg.ref("team/app:1")
	if err := src.Tag("app:1", target); err != nil {
		t.Fatal(err)
	}
	var ev events
	pushed, err := src.Push(context.Background(), target, PushOptions{Progress: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	m, d := remoteManifest(t, target)
	if pushed.Digest != d || pushed.Ref != target || pushed.Size == 0 {
		t.Errorf("Pushed = %+v, the registry has %s", pushed, d)
	}
	// The loaded image's layers are gzip: its manifest goes as it is.
	stored := storedManifest(t, src, "app:1")
	if len(m.Layers) != 2 || m.Layers[0].Digest != stored.Layers[0].Digest {
		t.Errorf("pushed layers %v, stored %v", m.Layers, stored.Layers)
	}
	for _, l := range m.Layers {
		if got := ev.states(l.Digest); !slices.Equal(got, []LayerState{LayerWaiting, LayerPushing, LayerPushed}) &&
			!slices.Equal(got, []LayerState{LayerWaiting, LayerExists}) {
			t.Errorf("push events of %s: %v", l.Digest, got)
		}
	}
	byDigest := reg.ref("team/app@" + d.String())
	if r, err := src.Resolve(byDigest); err != nil || r.ID != orig.ID {
		t.Errorf("Resolve(%s) in the pushing store: %v", byDigest, err)
	}

	dst := newStore(t)
	got := pull(t, dst, target, PullOptions{})
	sameImage(t, got, orig)
	dirs, err := dst.LayerDirs(got)
	if err != nil {
		t.Fatal(err)
	}
	if readLayerFile(t, dirs[1], "app/run") != "run\n" {
		t.Error("app/run differs")
	}
	if !slices.Equal(got.Digests, []string{byDigest}) {
		t.Errorf("Digests = %q", got.Digests)
	}

	// Pushing again sends no layer.
	var again events
	if _, err := src.Push(context.Background(), target, PushOptions{Progress: again.add}); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if got := again.states(l.Digest); !slices.Equal(got, []LayerState{LayerWaiting, LayerExists}) {
			t.Errorf("second push, events of %s: %v", l.Digest, got)
		}
	}

	// Remove works on a pulled image, and leaves nothing.
	if _, err := dst.Remove(target); err != nil {
		t.Fatal(err)
	}
	if files := storeFiles(t, dst); len(files) != 0 {
		t.Errorf("left after Remove: %q", files)
	}
}

// An imported plain tar (and a layer reused by diff ID from another blob)
// is pushed gzip-compressed, under a new manifest of the same config.
func TestPushRecompresses(t *testing.T) {
	reg := newTestRegistry(t)
	src := newStore(t)
	plain := layerTar(t, "etc/plain", "plain\n")
	layers := [][]byte{plain}
	if bz, err := exec.LookPath("bzip2"); err == nil {
		cmd := exec.Command(bz, "-c")
		cmd.Stdin = bytes.NewReader(layerTar(t, "etc/bz", "bz\n"))
		data, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, data)
	}
	for _, layer := range layers {
		img := importBytes(t, src, layer, "plain:1", `CMD ["/bin/true"]`)
		target := reg.ref("plain:1")
		if err := src.Tag("plain:1", target); err != nil {
			t.Fatal(err)
		}
		pushed, err := src.Push(context.Background(), target, PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, d := remoteManifest(t, target)
		if d != pushed.Digest || m.MediaType != types.OCIManifestSchema1 || m.Layers[0].MediaType != types.OCILayer {
			t.Errorf("pushed manifest %+v", m)
		}
		dst := newStore(t)
		got := pull(t, dst, target, PullOptions{})
		sameImage(t, got, img)
		// The same push twice sends the same blob.
		again, err := src.Push(context.Background(), target, PushOptions{})
		if err != nil || again.Digest != pushed.Digest {
			t.Errorf("second push: %s, %v; first %s", again.Digest, err, pushed.Digest)
		}
	}
}

func TestTag(t *testing.T) {
	s := newStore(t)
	img := importBytes(t, s, layerTar(t, "etc/x", "x\n"), "app:1")
	if err := s.Tag("app:1", "registry.test:5000/team/app:2"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve("registry.test:5000/team/app:2")
	if err != nil || got.ID != img.ID || got.Repo != "registry.test:5000/team/app" || got.Tag != "2" {
		t.Errorf("Resolve = %+v, %v", got, err)
	}
	if err := s.Tag(img.ID[7:19], "byid"); err != nil {
		t.Errorf("tag by ID prefix: %v", err)
	}
	if err := s.Tag("missing:1", "x:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tag of a missing image: %v", err)
	}
	if err := s.Tag("app:1", "Bad Name"); err == nil {
		t.Error("a bad tag was accepted")
	}
	if err := s.Tag("app:1", "app@sha256:"+img.ID[7:]); err == nil {
		t.Error("a digest was accepted as a tag")
	}
}
