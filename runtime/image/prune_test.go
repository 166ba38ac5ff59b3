package image

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestPrunable is the choice of Prune on an index made by hand: untagged
// images go, unless pulled by digest or in use; with All, every image no
// container uses goes. Oldest first.
func TestPrunable(t *testing.T) {
	idx := newIndex()
	add := func(m string, age int) {
		idx.Images[m] = &imageRecord{ID: "id-" + m, Created: testTime.Add(-time.Duration(age) * time.Hour)}
	}
	add("tagged", 1)
	idx.Tags["docker.io/library/bb:latest"] = "tagged"
	add("bare", 2)
	add("pinned", 3)
	idx.Digests["docker.io/library/redis@sha256:1"] = "pinned"
	idx.Pinned["docker.io/library/redis@sha256:1"] = true
	// Pulled by tag, whose tag then moved to a newer image: its digest
	// does not hold it.
	add("stale", 4)
	idx.Digests["docker.io/library/redis@sha256:2"] = "stale"
	add("used", 5)
	add("usedTagged", 6)
	idx.Tags["docker.io/library/app:1"] = "usedTagged"
	// A pin of another image does not hold this one.
	idx.Pinned["docker.io/library/redis@sha256:3"] = true

	inUse := func(id string) bool { return id == "id-used" || id == "id-usedTagged" }
	for _, tc := range []struct {
		opts PruneOptions
		want []string
	}{
		{PruneOptions{InUse: inUse}, []string{"stale", "bare"}},
		{PruneOptions{InUse: inUse, All: true}, []string{"stale", "pinned", "bare", "tagged"}},
		{PruneOptions{}, []string{"used", "stale", "bare"}},
		{PruneOptions{All: true}, []string{"usedTagged", "used", "stale", "pinned", "bare", "tagged"}},
	} {
		if got := idx.prunable(tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("prunable(All=%v, InUse=%v) = %q, want %q", tc.opts.All, tc.opts.InUse != nil, got, tc.want)
		}
	}
}

// TestPrune prunes a store of images from every source: re-tagged imports,
// an untagged import in use, a pull by tag whose tag moved, a pull by
// digest, and a build step that keeps a pruned image's layer.
func TestPrune(t *testing.T) {
	reg := newTestRegistry(t)
	s := newStore(t)

	// Pulled by tag, then the tag moves: the old image is dangling though
	// it keeps its repository digest.
	oldApp := ggcrImage(t, runtime.GOARCH, []string{"old"}, layerTar(t, "etc/old", "old\n"))
	reg.push(t, "app:1", oldApp)
	stale := pull(t, s, reg.ref("app:1"), PullOptions{})
	reg.push(t, "app:1", ggcrImage(t, runtime.GOARCH, []string{"new"}, layerTar(t, "etc/new", "new\n")))
	app := pull(t, s, reg.ref("app:1"), PullOptions{})
	// Pulled by digest only.
	pinnedImg := ggcrImage(t, runtime.GOARCH, []string{"pinned"}, layerTar(t, "etc/pinned", "p\n"))
	reg.push(t, "pinned:1", pinnedImg)
	pinned := pull(t, s, reg.ref("pinned@"+digestOf(t, pinnedImg).String()), PullOptions{})
	// Imported twice to the same tag: the first is dangling, its layer is
	// shared with the second.
	x := makeTar(t, file("x", "x"))
	oldX := importBytes(t, s, x, "x")
	newX := importBytes(t, s, x, "x")
	// The same with a layer of its own.
	oldY := importBytes(t, s, makeTar(t, file("y", "1")), "y")
	newY := importBytes(t, s, makeTar(t, file("y", "2")), "y")
	// Untagged, in use by a container.
	used := importBytes(t, s, makeTar(t, file("u", "u")), "")
	// A build step on top of the stale image keeps its layer.
	staleCF, err := s.ConfigFile(stale.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitStep(context.Background(), StepCommit{Key: "k", Config: staleCF, Diff: t.TempDir(), History: v1.History{CreatedBy: "ENV A=1"}}); err != nil {
		t.Fatal(err)
	}

	for _, img := range []Image{stale, oldX, oldY, used} {
		if got, err := s.Resolve(img.ID); err != nil || !got.Dangling {
			t.Errorf("image %s: Dangling = %v, %v; want dangling", img.ID, got.Dangling, err)
		}
	}
	for _, img := range []Image{app, pinned, newX, newY} {
		if got, err := s.Resolve(img.ID); err != nil || got.Dangling {
			t.Errorf("image %s: Dangling = %v, %v; want not dangling", img.ID, got.Dangling, err)
		}
	}

	inUse := func(id string) bool { return id == used.ID }
	before := storeBytes(t, s)
	r, err := s.Prune(PruneOptions{InUse: inUse})
	if err != nil {
		t.Fatal(err)
	}
	want := []DeleteItem{
		{Untagged: stale.Digests[0]},
		{Deleted: stale.ID},
		{Deleted: oldX.ID},
		{Deleted: oldY.ID},
		{Deleted: oldY.DiffIDs[0].String()},
	}
	if !slices.Equal(r.Deleted, want) {
		t.Errorf("Prune deleted\n%q\nwant\n%q", r.Deleted, want)
	}
	if got := before - storeBytes(t, s); r.Reclaimed != got || got <= 0 {
		t.Errorf("Reclaimed = %d, the store shrank by %d", r.Reclaimed, got)
	}
	for _, img := range []Image{stale, oldX, oldY} {
		if _, err := s.Resolve(img.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("pruned image %s: Resolve = %v", img.ID, err)
		}
	}
	for _, img := range []Image{app, pinned, newX, newY, used} {
		if _, err := s.LayerDirs(img); err != nil {
			t.Errorf("kept image %s: %v", img.ID, err)
		}
	}
	if _, ok, err := s.CachedStep("k"); !ok || err != nil {
		t.Errorf("the build step on the pruned image is gone: %v, %v", ok, err)
	}

	// Nothing more to prune: nothing deleted, nothing reclaimed.
	if r, err := s.Prune(PruneOptions{InUse: inUse}); err != nil || len(r.Deleted) != 0 || r.Reclaimed != 0 {
		t.Errorf("second Prune = %+v, %v", r, err)
	}

	// All: every image but the one in use, with all its names.
	r, err = s.Prune(PruneOptions{All: true, InUse: inUse})
	if err != nil {
		t.Fatal(err)
	}
	var untagged []string
	for _, d := range r.Deleted {
		if d.Untagged != "" {
			untagged = append(untagged, d.Untagged)
		}
	}
	slices.Sort(untagged)
	wantUntagged := []string{
		reg.ref("app:1"), app.Digests[0], pinned.Digests[0], "x:latest", "y:latest",
	}
	slices.Sort(wantUntagged)
	if !slices.Equal(untagged, wantUntagged) {
		t.Errorf("Prune -a untagged %q, want %q", untagged, wantUntagged)
	}
	list, err := s.ListAll()
	if err != nil || len(list) != 1 || list[0].ID != used.ID {
		t.Errorf("after Prune -a: %+v, %v", list, err)
	}
	if _, ok, err := s.CachedStep("k"); !ok || err != nil {
		t.Errorf("Prune -a dropped the build cache: %v, %v", ok, err)
	}

	// Without the build cache and the container, nothing is left.
	if _, err := s.PruneBuildCache(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if files := storeFiles(t, s); len(files) != 0 {
		t.Errorf("left after pruning everything: %q", files)
	}
}

// TestPruneCollectsLeftovers: blobs that no image names (an interrupted
// pull's) go with a prune that deletes no image, and count as reclaimed.
func TestPruneCollectsLeftovers(t *testing.T) {
	s := newStore(t)
	importBytes(t, s, makeTar(t, file("a", "a")), "a")
	o, err := s.newOp()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spoolBytes([]byte("an orphan blob"), o.path("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.placeBlob(sp); err != nil {
		t.Fatal(err)
	}
	o.close()
	r, err := s.Prune(PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Deleted) != 0 || r.Reclaimed != int64(len("an orphan blob")) {
		t.Errorf("Prune = %+v, want only the orphan's %d bytes", r, len("an orphan blob"))
	}
	if exists(s.blobPath(sp.digest)) {
		t.Error("the orphan blob is still there")
	}
}

// TestHistory: a built image's steps newest first, empty steps of size 0,
// the image's ID on the newest only; an image of no history shows its
// layers.
func TestHistory(t *testing.T) {
	s := newStore(t)
	base := importBytes(t, s, makeTar(t, file("base", "12345")), "base")
	cf, err := s.ConfigFile(base.ID)
	if err != nil {
		t.Fatal(err)
	}
	step, err := s.CommitStep(context.Background(), StepCommit{Key: "env", Config: cf, Diff: t.TempDir(), History: v1.History{CreatedBy: "ENV A=1", Comment: "berth build"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.CommitImage(context.Background(), step.Config, []string{"built"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.History("built")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("History = %+v, want 2 steps", h)
	}
	if h[0].ID != img.ID || h[0].CreatedBy != "ENV A=1" || !h[0].EmptyLayer || h[0].Size != 0 {
		t.Errorf("newest step %+v", h[0])
	}
	if h[1].ID != "" || h[1].CreatedBy != "berth image import" || h[1].EmptyLayer || h[1].Size != 5 {
		t.Errorf("oldest step %+v", h[1])
	}

	// A config with no history: a step per layer.
	bare := cf.DeepCopy()
	bare.History = nil
	bare.Config.Cmd = []string{"bare"}
	if _, err := s.CommitImage(context.Background(), bare, []string{"bare"}); err != nil {
		t.Fatal(err)
	}
	h, err = s.History("bare")
	if err != nil || len(h) != 1 || h[0].Size != 5 || h[0].CreatedBy != "" || h[0].ID == "" {
		t.Errorf("History(bare) = %+v, %v", h, err)
	}

	if _, err := s.History("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("History(nosuch) = %v", err)
	}
}

// storeBytes is the size of the store's blobs and of its layers' regular
// files.
func storeBytes(t testing.TB, s *Store) int64 {
	t.Helper()
	return regularBytes(filepath.Join(s.dir, blobsDir)) + regularBytes(filepath.Join(s.dir, layersDir))
}

// TestPullByDigestPinsStoredImage: pulling by digest an image the store
// has already (dangling since its tag moved) pins it without downloading.
func TestPullByDigestPinsStoredImage(t *testing.T) {
	reg := newTestRegistry(t)
	s := newStore(t)
	old := ggcrImage(t, runtime.GOARCH, []string{"old"}, layerTar(t, "etc/old", "old\n"))
	reg.push(t, "app:1", old)
	first := pull(t, s, reg.ref("app:1"), PullOptions{})
	reg.push(t, "app:1", ggcrImage(t, runtime.GOARCH, []string{"new"}, layerTar(t, "etc/new", "new\n")))
	pull(t, s, reg.ref("app:1"), PullOptions{})
	if got, err := s.Resolve(first.ID); err != nil || !got.Dangling {
		t.Fatalf("the image whose tag moved: Dangling = %v, %v", got.Dangling, err)
	}
	pull(t, s, reg.ref("app@"+digestOf(t, old).String()), PullOptions{})
	if got, err := s.Resolve(first.ID); err != nil || got.Dangling {
		t.Errorf("pulled again by digest: Dangling = %v, %v", got.Dangling, err)
	}
	if r, err := s.Prune(PruneOptions{}); err != nil || len(r.Deleted) != 0 {
		t.Errorf("Prune = %+v, %v; want nothing deleted", r, err)
	}
}
