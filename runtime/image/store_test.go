package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

func TestImportBusybox(t *testing.T) {
	imagetest.NeedRoot(t)
	s := newStore(t)
	rootfs := imagetest.RootfsTar(t)
	img := importBytes(t, s, rootfs, "bb", `CMD ["/bin/sh"]`, "ENV A=1 B='two words'", "WORKDIR /home/app")

	if img.Ref != "docker.io/library/bb:latest" || img.Repo != "bb" || img.Tag != "latest" {
		t.Errorf("ref = %q %q %q", img.Ref, img.Repo, img.Tag)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || len(img.ID) != 71 {
		t.Errorf("ID = %q", img.ID)
	}
	if len(img.DiffIDs) != 1 || img.DiffIDs[0].String() == img.ID {
		t.Errorf("DiffIDs = %v", img.DiffIDs)
	}
	bb, err := os.Stat(imagetest.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	want := bb.Size() + int64(len(imagetest.Passwd)+len(imagetest.Group))
	if img.Size != want {
		t.Errorf("Size = %d, want %d", img.Size, want)
	}
	if !slices.Equal(img.Config.Cmd, []string{"/bin/sh"}) || img.Config.WorkingDir != "/home/app" {
		t.Errorf("config = %+v", img.Config)
	}
	if !slices.Equal(img.Config.Env, []string{"A=1", "B=two words"}) {
		t.Errorf("Env = %q", img.Config.Env)
	}
	if time.Since(img.Created) > time.Minute {
		t.Errorf("Created = %v", img.Created)
	}

	dirs, err := s.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 1 || !filepath.IsAbs(dirs[0]) || filepath.Base(dirs[0]) != img.DiffIDs[0].Hex {
		t.Fatalf("LayerDirs = %v", dirs)
	}
	root := dirs[0]
	if got := readLayerFile(t, root, "etc/passwd"); got != imagetest.Passwd {
		t.Errorf("etc/passwd = %q", got)
	}
	if l, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	fi, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v %v", fi.Mode(), err)
	}
	if uid, gid := owner(t, filepath.Join(root, "home/app")); uid != 1000 || gid != 1000 {
		t.Errorf("home/app owned by %d:%d", uid, gid)
	}
	fi, err = os.Stat(filepath.Join(root, "bin/busybox"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v %v", fi.Mode(), err)
	}

	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != img.ID || list[0].Size != img.Size || list[0].Config.WorkingDir != "/home/app" {
		t.Errorf("List = %+v", list)
	}
}

func TestResolve(t *testing.T) {
	s := newStore(t)
	a := importBytes(t, s, makeTar(t, file("a", "a")), "bb")
	b := importBytes(t, s, makeTar(t, file("b", "b")), "localhost:5000/team/app:1.2")
	c := importBytes(t, s, makeTar(t, file("c", "c")), "")
	hexA := strings.TrimPrefix(a.ID, "sha256:")

	tests := []struct {
		ref     string
		id      string
		ref2    string
		wantErr error
	}{
		{ref: "bb", id: a.ID, ref2: "docker.io/library/bb:latest"},
		{ref: "bb:latest", id: a.ID, ref2: "docker.io/library/bb:latest"},
		{ref: "library/bb", id: a.ID, ref2: "docker.io/library/bb:latest"},
		{ref: "docker.io/library/bb:latest", id: a.ID, ref2: "docker.io/library/bb:latest"},
		{ref: "localhost:5000/team/app:1.2", id: b.ID, ref2: "localhost:5000/team/app:1.2"},
		// Found by ID: no Ref, but Tags.
		{ref: a.ID, id: a.ID},
		{ref: hexA, id: a.ID},
		{ref: hexA[:12], id: a.ID},
		{ref: "sha256:" + hexA[:8], id: a.ID},
		{ref: c.ID, id: c.ID},
		{ref: "bb:2", wantErr: ErrNotFound},
		{ref: "localhost:5000/team/app", wantErr: ErrNotFound},
		{ref: "nothere", wantErr: ErrNotFound},
		{ref: "sha256:" + strings.Repeat("0", 64), wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			img, err := s.Resolve(tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve(%q) = %+v, %v; want %v", tt.ref, img, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.ID != tt.id || img.Ref != tt.ref2 {
				t.Errorf("Resolve(%q) = %s %q, want %s %q", tt.ref, img.ID, img.Ref, tt.id, tt.ref2)
			}
			if img.ID == a.ID && !slices.Equal(img.Tags, []string{"docker.io/library/bb:latest"}) {
				t.Errorf("Tags = %q", img.Tags)
			}
		})
	}

	if _, err := s.Resolve("BB"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(BB) = %v, want an invalid reference error", err)
	}

	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Repo+":"+img.Tag)
	}
	if want := []string{"bb:latest", "localhost:5000/team/app:1.2"}; !slices.Equal(names, want) {
		t.Errorf("List = %q, want %q (untagged images are not listed)", names, want)
	}
	all, err := s.ListAll()
	if err != nil || len(all) != 3 || all[0].Ref != "" || all[0].ID != c.ID {
		t.Errorf("ListAll = %+v, %v", all, err)
	}
}

func TestResolveAmbiguousPrefix(t *testing.T) {
	s := newStore(t)
	// IDs are config digests, and configs hold their creation time: import
	// until two IDs share a first hex digit (16 images suffice).
	seen := map[byte]string{}
	for i := 0; ; i++ {
		img := importBytes(t, s, makeTar(t, file("f", "x")), "")
		hex := strings.TrimPrefix(img.ID, "sha256:")
		if _, ok := seen[hex[0]]; ok {
			_, err := s.Resolve("sha256:" + hex[:1])
			if !errors.Is(err, ErrAmbiguous) {
				t.Fatalf("Resolve(sha256:%s) = %v, want ErrAmbiguous", hex[:1], err)
			}
			break
		}
		seen[hex[0]] = img.ID
	}
	if got := layerCount(t, s); got != 1 {
		t.Errorf("%d layers for one content, want 1", got)
	}
}

func TestRemoveCollectsUnusedLayers(t *testing.T) {
	s := newStore(t)
	shared := makeTar(t, dir("etc/"), file("etc/os-release", "ID=test\n"))
	a := importBytes(t, s, shared, "a")
	b := importBytes(t, s, shared, "b")
	c := importBytes(t, s, makeTar(t, file("only-c", "c")), "c")
	if a.DiffIDs[0] != b.DiffIDs[0] {
		t.Fatalf("same content, different diff IDs")
	}
	if got := layerCount(t, s); got != 2 {
		t.Fatalf("%d layers, want 2", got)
	}
	// A second tag on c.
	if _, err := s.Import(context.Background(), strings.NewReader(string(makeTar(t, file("only-c", "c")))), "c2", ImportOptions{}); err != nil {
		t.Fatal(err)
	}

	lines, err := s.Remove("a")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Untagged: a:latest", "Deleted: " + a.ID}; !slices.Equal(lines, want) {
		t.Errorf("Remove(a) = %q, want %q", lines, want)
	}
	dirs, err := s.LayerDirs(b)
	if err != nil || !exists(filepath.Join(dirs[0], "etc/os-release")) {
		t.Fatalf("the layer b shares with a is gone: %v", err)
	}
	if _, err := s.Resolve(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(removed) = %v", err)
	}

	lines, err = s.Remove(strings.TrimPrefix(b.ID, "sha256:")[:10])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Untagged: b:latest", "Deleted: " + b.ID, "Deleted: " + b.DiffIDs[0].String()}; !slices.Equal(lines, want) {
		t.Errorf("Remove(b by ID) = %q, want %q", lines, want)
	}
	if exists(dirs[0]) {
		t.Errorf("layer %s still on disk", dirs[0])
	}
	if _, err := s.Remove("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(b) again = %v, want ErrNotFound", err)
	}

	lines, err = s.Remove("c")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Untagged: c:latest", "Deleted: " + c.ID}; !slices.Equal(lines, want) {
		t.Errorf("Remove(c) = %q, want %q", lines, want)
	}
	c2, err := s.Resolve("c2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(c2.ID); err != nil {
		t.Fatal(err)
	}
	if files := storeFiles(t, s); len(files) != 0 {
		t.Errorf("store not empty after removing everything: %q", files)
	}
}

func TestRemoveByIDUntagsAll(t *testing.T) {
	s := newStore(t)
	data := makeTar(t, file("x", "x"))
	img := importBytes(t, s, data, "one")
	// Tag the same image twice through a docker save of it.
	if _, err := s.Load(context.Background(), strings.NewReader(string(saveOf(t, s, img, "two:1", "three")))); err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve(img.ID)
	if err != nil || got.Ref != "" || len(got.Tags) != 3 {
		t.Fatalf("Resolve(ID) = %q %q, %v", got.Ref, got.Tags, err)
	}
	lines, err := s.Remove(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Untagged: one:latest", "Untagged: three:latest", "Untagged: two:1", "Deleted: " + img.ID, "Deleted: " + img.DiffIDs[0].String()}
	if !slices.Equal(lines, want) {
		t.Errorf("Remove = %q, want %q", lines, want)
	}
}

func TestImportSameContentUnpacksOnce(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"plain", makeTar(t, file("plain", "p"))},
		{"gzip", gzipBytes(t, makeTar(t, file("gzip", "g")))},
		{"zstd", zstdBytes(t, makeTar(t, file("zstd", "z")))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := importBytes(t, s, tc.data, tc.name+"-a")
			dirs, err := s.LayerDirs(a)
			if err != nil {
				t.Fatal(err)
			}
			before, err := os.Stat(dirs[0])
			if err != nil {
				t.Fatal(err)
			}
			b := importBytes(t, s, tc.data, tc.name+"-b")
			if a.ID == b.ID || a.DiffIDs[0] != b.DiffIDs[0] {
				t.Fatalf("a %s %v, b %s %v", a.ID, a.DiffIDs, b.ID, b.DiffIDs)
			}
			after, err := os.Stat(dirs[0])
			if err != nil {
				t.Fatal(err)
			}
			if !os.SameFile(before, after) {
				t.Errorf("the layer was unpacked again")
			}
			if got := readLayerFile(t, dirs[0], tc.name); got == "" {
				t.Errorf("empty file")
			}
		})
	}
	if got := layerCount(t, s); got != 3 {
		t.Errorf("%d layers, want 3", got)
	}
}

func TestConcurrentImports(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	data := gzipBytes(t, makeTar(t, dir("d/"), file("d/f", strings.Repeat("x", 1<<20))))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One Store per goroutine, as separate processes would have.
			s, err := Open(root)
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = s.Import(context.Background(), strings.NewReader(string(data)), "img"+string(rune('a'+i)), ImportOptions{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != len(errs) {
		t.Fatalf("List = %d images, %v", len(list), err)
	}
	if got := layerCount(t, s); got != 1 {
		t.Errorf("%d layers, want 1", got)
	}
	tmp, _ := os.ReadDir(filepath.Join(root, tmpDir))
	if len(tmp) != 0 {
		t.Errorf("tmp/ not empty: %v", tmp)
	}
}

func TestStaleWorkFoldersAreSwept(t *testing.T) {
	s := newStore(t)
	stale := filepath.Join(s.dir, tmpDir, "op-killed")
	if err := os.MkdirAll(filepath.Join(stale, "layer-1/usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	importBytes(t, s, makeTar(t, file("f", "f")), "x")
	if exists(stale) {
		t.Errorf("the work folder of a dead operation was not removed")
	}
}

func TestLayerDirsRestoresMissingLayer(t *testing.T) {
	s := newStore(t)
	img := importBytes(t, s, gzipBytes(t, makeTar(t, file("f", "content"))), "x")
	dirs, err := s.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dirs[0]); err != nil {
		t.Fatal(err)
	}
	dirs, err = s.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLayerFile(t, dirs[0], "f"); got != "content" {
		t.Errorf("f = %q", got)
	}
}

func TestImportPlatformAndErrors(t *testing.T) {
	s := newStore(t)
	img := importBytes(t, s, makeTar(t, file("f", "f")), "x")
	cf, err := s.readConfig(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || cf.Config.Cmd != nil {
		t.Errorf("config = %+v", cf)
	}
	if _, err := s.Import(context.Background(), strings.NewReader("x"), "Bad Ref", ImportOptions{}); err == nil {
		t.Errorf("bad ref accepted")
	}
	if _, err := s.Import(context.Background(), strings.NewReader("x"), "x", ImportOptions{Changes: []string{"RUN make"}}); err == nil || !strings.Contains(err.Error(), "unknown instruction RUN") {
		t.Errorf("RUN change: %v", err)
	}
	if _, err := s.Import(context.Background(), strings.NewReader(""), "x", ImportOptions{}); !errors.Is(err, ErrBadArchive) {
		t.Errorf("empty input: %v", err)
	}
}

func TestZeroLayerImage(t *testing.T) {
	s := newStore(t)
	img := importBytes(t, s, makeTar(t, file("f", "f")), "x")
	img.DiffIDs = nil
	dirs, err := s.LayerDirs(img)
	if err != nil || dirs == nil || len(dirs) != 0 {
		t.Errorf("LayerDirs(no layers) = %#v, %v", dirs, err)
	}
}
