package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func owner(t testing.TB, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// ggcrImage makes an image with go-containerregistry of the given layer
// tarballs (gzip-compressed by ggcr), for arch, with a Cmd.
func ggcrImage(t testing.TB, arch string, cmd []string, layers ...[]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(l)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Cmd = cmd
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func configName(t testing.TB, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func load(t testing.TB, s *Store, data []byte) []Image {
	t.Helper()
	imgs, err := s.Load(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return imgs
}

func refsOf(imgs []Image) []string {
	var out []string
	for _, img := range imgs {
		out = append(out, img.Ref)
	}
	slices.Sort(out)
	return out
}

func TestLoadDockerSaveFromGGCR(t *testing.T) {
	s := newStore(t)
	base := makeTar(t, dir("etc/"), file("etc/hostname", "base\n"))
	app := makeTar(t, dir("app/"), file("app/run.sh", "#!/bin/sh\necho hi\n"))
	one := ggcrImage(t, runtime.GOARCH, []string{"/app/run.sh"}, base, app)
	two := ggcrImage(t, runtime.GOARCH, []string{"sh"}, base)

	var buf bytes.Buffer
	refs := map[name.Reference]v1.Image{
		name.MustParseReference("one:1"):                 one,
		name.MustParseReference("registry.test/one:2"):   one,
		name.MustParseReference("docker.io/library/two"): two,
	}
	if err := tarball.MultiRefWrite(refs, &buf); err != nil {
		t.Fatal(err)
	}
	imgs := load(t, s, buf.Bytes())
	want := []string{"docker.io/library/one:1", "docker.io/library/two:latest", "registry.test/one:2"}
	if got := refsOf(imgs); !slices.Equal(got, want) {
		t.Fatalf("Load = %q, want %q", got, want)
	}
	img, err := s.Resolve("one:1")
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != configName(t, one) || !slices.Equal(img.Config.Cmd, []string{"/app/run.sh"}) || len(img.DiffIDs) != 2 {
		t.Errorf("one = %+v", img)
	}
	if img.Size != int64(len("base\n")+len("#!/bin/sh\necho hi\n")) {
		t.Errorf("Size = %d", img.Size)
	}
	dirs, err := s.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	if readLayerFile(t, dirs[0], "etc/hostname") != "base\n" || readLayerFile(t, dirs[1], "app/run.sh") == "" {
		t.Errorf("layers %v have the wrong content", dirs)
	}
	if got := layerCount(t, s); got != 2 {
		t.Errorf("%d layers, want 2 (base is shared)", got)
	}
	// The gzip layers are stored as they came.
	m := storedManifest(t, s, "one:1")
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s, want %s", l.MediaType, types.OCILayer)
		}
		if _, err := os.Stat(s.blobPath(l.Digest)); err != nil {
			t.Error(err)
		}
	}
	// Loading it again changes nothing.
	load(t, s, buf.Bytes())
	if got := layerCount(t, s); got != 2 {
		t.Errorf("%d layers after a second load", got)
	}
}

func storedManifest(t testing.TB, s *Store, ref string) v1.Manifest {
	t.Helper()
	idx, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(m.manifest)
	data, err := s.readBlob(h)
	if err != nil {
		t.Fatal(err)
	}
	var man v1.Manifest
	if err := json.Unmarshal(data, &man); err != nil {
		t.Fatal(err)
	}
	if man.Config.Digest.String() != idx.Images[m.manifest].ID {
		t.Errorf("manifest config %s, record %s", man.Config.Digest, idx.Images[m.manifest].ID)
	}
	return man
}

// tarFiles makes an archive of named files (symlinks when the body starts
// with "->").
func tarFiles(t testing.TB, files [][2]string) []byte {
	t.Helper()
	var entries []entry
	for _, f := range files {
		if to, ok := strings.CutPrefix(f[1], "->"); ok {
			entries = append(entries, symlink(f[0], to))
		} else {
			entries = append(entries, file(f[0], f[1]))
		}
	}
	return makeTar(t, entries...)
}

func configJSON(t testing.TB, cmd []string, layers ...[]byte) []byte {
	t.Helper()
	cf := v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}}}
	cf.Config.Cmd = cmd
	for _, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, sha256Hash(sha256Sum(l)))
	}
	data, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func dockerManifest(t testing.TB, entries ...dockerManifestEntry) string {
	t.Helper()
	data, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// saveOf writes a classic docker save (uncompressed layer.tar files) of an
// image of the store.
func saveOf(t testing.TB, s *Store, img Image, tags ...string) []byte {
	t.Helper()
	idx, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	cfgHash, _ := v1.NewHash(img.ID)
	cfg, err := s.readBlob(cfgHash)
	if err != nil {
		t.Fatal(err)
	}
	files := [][2]string{{cfgHash.Hex + ".json", string(cfg)}}
	e := dockerManifestEntry{Config: cfgHash.Hex + ".json", RepoTags: tags}
	for i, d := range img.DiffIDs {
		blob, _ := idx.blobOf(d.String())
		bh, _ := v1.NewHash(blob)
		data, err := s.readBlob(bh)
		if err != nil {
			t.Fatal(err)
		}
		p := strings.Repeat(string(rune('a'+i)), 64) + "/layer.tar"
		files = append(files, [2]string{p, string(data)})
		e.Layers = append(e.Layers, p)
	}
	files = append(files, [2]string{"manifest.json", dockerManifest(t, e)})
	return tarFiles(t, files)
}

func TestLoadHandMadeDockerSave(t *testing.T) {
	l1 := makeTar(t, file("one", "1"))
	l2 := makeTar(t, file("two", "22"))
	cfgA := configJSON(t, []string{"a"}, l1, l2)
	cfgB := configJSON(t, []string{"b"}, l1)
	cfgEmpty := configJSON(t, []string{"empty"})
	hexOf := func(b []byte) string { return sha256Hash(sha256Sum(b)).Hex }

	classic := tarFiles(t, [][2]string{
		{"l1/layer.tar", string(l1)},
		{"l2/layer.tar", string(l2)},
		// Old dockers link the layer.tar of a layer seen twice.
		{"l3/layer.tar", "->../l1/layer.tar"},
		{hexOf(cfgA) + ".json", string(cfgA)},
		{hexOf(cfgB) + ".json", string(cfgB)},
		{hexOf(cfgEmpty) + ".json", string(cfgEmpty)},
		{"manifest.json", dockerManifest(t,
			dockerManifestEntry{Config: hexOf(cfgA) + ".json", RepoTags: []string{"a:1"}, Layers: []string{"l1/layer.tar", "l2/layer.tar"}},
			dockerManifestEntry{Config: hexOf(cfgB) + ".json", Layers: []string{"l3/layer.tar"}},
			dockerManifestEntry{Config: hexOf(cfgEmpty) + ".json", RepoTags: []string{"empty"}, Layers: []string{}},
		)},
		{"repositories", `{"a":{"1":"x"}}`},
	})
	// Docker ≥ 25: blobs/sha256 with an OCI layout beside manifest.json.
	modern := tarFiles(t, [][2]string{
		{"blobs/sha256/" + hexOf(l1), string(l1)},
		{"blobs/sha256/" + hexOf(l2), string(l2)},
		{"blobs/sha256/" + hexOf(cfgA), string(cfgA)},
		{"index.json", `{"schemaVersion":2,"manifests":[]}`},
		{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`},
		{"manifest.json", dockerManifest(t, dockerManifestEntry{
			Config:   "blobs/sha256/" + hexOf(cfgA),
			RepoTags: []string{"a:1"},
			Layers:   []string{"blobs/sha256/" + hexOf(l1), "blobs/sha256/" + hexOf(l2)},
		})},
	})

	for _, tc := range []struct {
		name string
		data []byte
		want []string
	}{
		{"classic", classic, []string{"", "docker.io/library/a:1", "docker.io/library/empty:latest"}},
		{"classic gzip", gzipBytes(t, classic), []string{"", "docker.io/library/a:1", "docker.io/library/empty:latest"}},
		{"docker 25", modern, []string{"docker.io/library/a:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			imgs := load(t, s, tc.data)
			if got := refsOf(imgs); !slices.Equal(got, tc.want) {
				t.Fatalf("Load = %q, want %q", got, tc.want)
			}
			a, err := s.Resolve("a:1")
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != "sha256:"+hexOf(cfgA) || a.Size != 3 {
				t.Errorf("a = %s size %d", a.ID, a.Size)
			}
			dirs, err := s.LayerDirs(a)
			if err != nil {
				t.Fatal(err)
			}
			if readLayerFile(t, dirs[0], "one") != "1" || readLayerFile(t, dirs[1], "two") != "22" {
				t.Errorf("wrong layer content")
			}
			for _, l := range storedManifest(t, s, "a:1").Layers {
				if l.MediaType != types.OCIUncompressedLayer {
					t.Errorf("media type %s", l.MediaType)
				}
			}
			if len(tc.want) == 3 {
				e, err := s.Resolve("empty")
				if err != nil {
					t.Fatal(err)
				}
				if dirs, err := s.LayerDirs(e); err != nil || len(dirs) != 0 {
					t.Errorf("LayerDirs(empty) = %v, %v", dirs, err)
				}
				b, err := s.Resolve("sha256:" + hexOf(cfgB))
				if err != nil || b.Ref != "" || !slices.Equal(b.Config.Cmd, []string{"b"}) {
					t.Errorf("untagged b = %+v, %v", b, err)
				}
			}
		})
	}
}

// ociArchive writes an OCI layout with ggcr and tars it.
func ociArchive(t testing.TB, add func(p layout.Path)) []byte {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	add(p)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadOCIArchive(t *testing.T) {
	s := newStore(t)
	layer := makeTar(t, file("hello", "world"))
	img := ggcrImage(t, runtime.GOARCH, []string{"hello"}, layer)
	other := ggcrImage(t, runtime.GOARCH, []string{"other"}, makeTar(t, file("o", "o")))
	data := ociArchive(t, func(p layout.Path) {
		for _, ann := range []map[string]string{
			{annotationRefName: "example.com/app:v1"},
			{annotationRefName: "latest", annotationContainerdRef: "docker.io/library/app:latest"},
		} {
			if err := p.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
				t.Fatal(err)
			}
		}
		// A bare tag names no repository: untagged.
		if err := p.AppendImage(other, layout.WithAnnotations(map[string]string{annotationRefName: "v2"})); err != nil {
			t.Fatal(err)
		}
	})
	imgs := load(t, s, data)
	if got, want := refsOf(imgs), []string{"", "docker.io/library/app:latest", "example.com/app:v1"}; !slices.Equal(got, want) {
		t.Fatalf("Load = %q, want %q", got, want)
	}
	got, err := s.Resolve("example.com/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != configName(t, img) {
		t.Errorf("ID %s, want %s", got.ID, configName(t, img))
	}
	dirs, err := s.LayerDirs(got)
	if err != nil || readLayerFile(t, dirs[0], "hello") != "world" {
		t.Fatalf("layer: %v", err)
	}
	// The manifest is stored as it came.
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.blobPath(digest)); err != nil {
		t.Errorf("manifest blob: %v", err)
	}
}

func TestLoadOCIMultiPlatform(t *testing.T) {
	arches := []string{"s390x", runtime.GOARCH, "riscv64"}
	if runtime.GOARCH != "arm64" {
		arches = append(arches, "arm64")
	}
	var adds []mutate.IndexAddendum
	want := map[string]v1.Image{}
	for _, arch := range arches {
		img := ggcrImage(t, arch, []string{arch}, makeTar(t, file("arch", arch)))
		want[arch] = img
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	inner := mutate.AppendManifests(empty.Index, adds...)
	// Nested: an index whose only entry is the multi-platform index.
	outer := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: inner})

	for _, tc := range []struct {
		name string
		idx  v1.ImageIndex
	}{{"index", inner}, {"nested index", outer}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			data := ociArchive(t, func(p layout.Path) {
				if err := p.AppendIndex(tc.idx, layout.WithAnnotations(map[string]string{annotationRefName: "multi:1"})); err != nil {
					t.Fatal(err)
				}
			})
			imgs := load(t, s, data)
			if len(imgs) != 1 || imgs[0].Ref != "docker.io/library/multi:1" {
				t.Fatalf("Load = %+v", imgs)
			}
			if imgs[0].ID != configName(t, want[runtime.GOARCH]) || !slices.Equal(imgs[0].Config.Cmd, []string{runtime.GOARCH}) {
				t.Errorf("loaded %s (%v), want the %s image", imgs[0].ID, imgs[0].Config.Cmd, runtime.GOARCH)
			}
			if got := layerCount(t, s); got != 1 {
				t.Errorf("%d layers: only the chosen platform's should be unpacked", got)
			}
		})
	}

	t.Run("no matching platform", func(t *testing.T) {
		s := newStore(t)
		foreign := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
			Add:        want["s390x"],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}},
		})
		data := ociArchive(t, func(p layout.Path) {
			if err := p.AppendIndex(foreign); err != nil {
				t.Fatal(err)
			}
		})
		_, err := s.Load(context.Background(), bytes.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), "no image for linux/"+runtime.GOARCH+" (it has linux/s390x)") {
			t.Errorf("err = %v", err)
		}
		if files := storeFiles(t, s); len(files) != 0 {
			t.Errorf("left behind: %q", files)
		}
	})
}
