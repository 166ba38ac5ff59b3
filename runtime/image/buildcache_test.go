package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// overlayDiff makes a folder of changes as an overlay upper directory has
// them: a file, a hard link to it, a symlink, a deleted file (0/0 character
// device) and a replaced directory (opaque).
func overlayDiff(t *testing.T) string {
	t.Helper()
	imagetest.NeedRoot(t)
	dir := filepath.Join(t.TempDir(), "upper")
	for _, d := range []string{"etc", "opq/sub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/app.conf"), []byte("conf\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "etc/app.conf"), filepath.Join(dir, "etc/app.link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("app.conf", filepath.Join(dir, "etc/current")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "etc/gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, "opq"), opaqueXattr, []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	// overlayfs's own bookkeeping stays out of the layer.
	if err := unix.Setxattr(filepath.Join(dir, "etc"), "trusted.overlay.impure", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, "etc/app.conf"), "user.keep", []byte("me"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatal(err)
	}
	return dir
}

func TestCommitStepFromOverlayDiff(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	base := importBytes(t, s, makeTar(t, dir("etc/"), file("etc/gone", "x"), dir("opq/"), file("opq/old", "o")), "base")
	parent, err := s.ConfigFile(base.ID)
	if err != nil {
		t.Fatal(err)
	}
	diff := overlayDiff(t)
	step, err := s.CommitStep(ctx, StepCommit{Key: "k1", Config: parent, Diff: diff, History: v1.History{CreatedBy: "RUN make"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(step.Config.RootFS.DiffIDs) != 2 || step.Config.RootFS.DiffIDs[0] != base.DiffIDs[0] {
		t.Fatalf("diff IDs %v", step.Config.RootFS.DiffIDs)
	}
	h := step.Config.History[len(step.Config.History)-1]
	if h.CreatedBy != "RUN make" || h.EmptyLayer {
		t.Errorf("history %+v", h)
	}
	if len(parent.RootFS.DiffIDs) != 1 {
		t.Error("CommitStep changed the config it was given")
	}

	// The blob is the OCI form of the diff.
	layer := step.Config.RootFS.DiffIDs[1]
	f, err := os.Open(s.blobPath(layer))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		for k := range hdr.PAXRecords {
			if k == "SCHILY.xattr.trusted.overlay.impure" {
				t.Errorf("%s carries %s", hdr.Name, k)
			}
		}
		if hdr.Name == "etc/app.link" && (hdr.Typeflag != tar.TypeLink || hdr.Linkname != "etc/app.conf") {
			t.Errorf("hard link written as %c → %s", hdr.Typeflag, hdr.Linkname)
		}
	}
	want := []string{"etc/", "etc/app.conf", "etc/app.link", "etc/current", "etc/.wh.gone", "opq/", "opq/.wh..wh..opq", "opq/sub/"}
	if !slices.Equal(names, want) {
		t.Errorf("layer tar:\n got %q\nwant %q", names, want)
	}

	// The unpacked layer is in overlay form again.
	img := Image{ID: step.ID, DiffIDs: step.Config.RootFS.DiffIDs}
	dirs, err := s.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dirs[1], "etc/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout: %+v %v", st, err)
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(dirs[1], "opq"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque: %q %v", buf[:n], err)
	}

	// The cache finds the step; the same changes make the same layer.
	cached, ok, err := s.CachedStep("k1")
	if err != nil || !ok || cached.ID != step.ID {
		t.Fatalf("CachedStep = %v %v %v", cached.ID, ok, err)
	}
	if _, ok, _ := s.CachedStep("k2"); ok {
		t.Error("an unknown key hit")
	}
	again, err := s.CommitStep(ctx, StepCommit{Key: "k2", Config: parent, Diff: diff, History: v1.History{CreatedBy: "RUN make"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Config.RootFS.DiffIDs[1] != layer {
		t.Error("the same changes made another layer")
	}

	// A step of config only, then the image.
	cf := step.Config.DeepCopy()
	cf.Config.Cmd = []string{"run"}
	meta, err := s.CommitStep(ctx, StepCommit{Key: "k3", Config: cf, History: v1.History{CreatedBy: "CMD run"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Config.RootFS.DiffIDs) != 2 || !meta.Config.History[len(meta.Config.History)-1].EmptyLayer {
		t.Errorf("config step: %+v", meta.Config)
	}
	built, err := s.CommitImage(ctx, meta.Config, []string{"built:1", "built:latest"})
	if err != nil {
		t.Fatal(err)
	}
	if built.ID != meta.ID || built.Ref != "docker.io/library/built:1" || len(built.Tags) != 2 || built.Config.Cmd[0] != "run" {
		t.Errorf("image %+v", built)
	}
	if same, err := s.CommitImage(ctx, meta.Config, []string{"other"}); err != nil || same.ID != built.ID {
		t.Errorf("the same config again: %v %v", same.ID, err)
	}

	// Removing the images keeps what the cache names; pruning the cache
	// frees it.
	for _, ref := range []string{"built:1", "built:latest", "other", "base"} {
		if _, err := s.Remove(ref); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := s.CachedStep("k3"); !ok || err != nil {
		t.Errorf("the cache lost a step to Remove: %v", err)
	}
	if n, err := s.PruneBuildCache(); err != nil || n != 3 {
		t.Errorf("PruneBuildCache = %d, %v", n, err)
	}
	if got := layerCount(t, s); got != 0 {
		t.Errorf("%d layers after the prune", got)
	}
	if files := storeFiles(t, s); len(files) != 0 {
		t.Errorf("left after the prune: %v", files)
	}
}

func TestCommitStepEmptyDiff(t *testing.T) {
	s := newStore(t)
	empty := t.TempDir()
	step, err := s.CommitStep(context.Background(), StepCommit{Key: "k", Config: &v1.ConfigFile{OS: "linux"}, Diff: empty, History: v1.History{CreatedBy: "RUN true"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(step.Config.RootFS.DiffIDs) != 0 || !step.Config.History[0].EmptyLayer {
		t.Errorf("config %+v", step.Config)
	}
	// An image of no layer.
	img, err := s.CommitImage(context.Background(), step.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != "" || len(img.DiffIDs) != 0 {
		t.Errorf("image %+v", img)
	}
}
