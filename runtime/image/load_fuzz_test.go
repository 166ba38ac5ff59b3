package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadArchive loads arbitrary bytes as a `docker save` tarball or an
// OCI image archive into a store in a temporary tree. It must not panic,
// nor write anything outside the store's folder (the tree's sentinel file,
// folder and symlink stay as they were: see FuzzUnpack); a load that fails
// leaves the store empty, as Load promises; one that succeeds leaves a
// store that lists its images and knows their layers. The seeds are in
// testdata/fuzz/FuzzLoadArchive: docker saves (plain, gzipped, with linked
// layers, several images), OCI archives (one image, a multi-platform
// index), and broken and hostile variants of them.
func FuzzLoadArchive(f *testing.F) {
	// The tree is made once per fuzzing process, the store anew for each
	// input.
	parent := escapeTargets(f)
	if err := os.Mkdir(filepath.Join(parent, "images"), 0o700); err != nil {
		f.Fatal(err)
	}
	root := filepath.Join(parent, "images", "store")
	before := tree(f, parent, "images")
	f.Fuzz(func(t *testing.T, data []byte) {
		if tooLarge(data, true) {
			t.Skip("expands past the fuzzing bounds")
		}
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer removeTree(root)
		imgs, err := s.Load(context.Background(), bytes.NewReader(data))
		sameTree(t, before, tree(t, parent, "images"))
		if err != nil {
			if files := storeFiles(t, s); len(files) != 0 {
				t.Errorf("a failed load (%v) left %q", err, files)
			}
			if exists(filepath.Join(s.dir, indexFile)) {
				t.Errorf("a failed load (%v) wrote an index", err)
			}
			return
		}
		if _, err := s.ListAll(); err != nil {
			t.Fatalf("loaded %d images, then: %v", len(imgs), err)
		}
		for _, img := range imgs {
			dirs, err := s.LayerDirs(img)
			if err != nil {
				t.Fatalf("image %s: %v", img.ID, err)
			}
			for _, d := range dirs {
				if rel, err := filepath.Rel(root, d); err != nil || !filepath.IsLocal(rel) {
					t.Errorf("image %s: layer %s is not in the store", img.ID, d)
				}
				if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
					t.Errorf("image %s: layer %s: %v", img.ID, d, err)
				}
			}
		}
	})
}
