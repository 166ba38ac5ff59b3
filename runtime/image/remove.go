package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Remove untags ref; when no tag is left on the image, its manifest, config
// and the layers no other image uses are deleted too. It returns what it did
// as docker prints it ("Untagged: bb:latest", "Deleted: sha256:…"). Whether
// a container still uses the image is the caller's check.
//
// ref is a tag (only that tag goes) or an ID, ID prefix or name@digest (all
// the image's tags go). Should deleting files fail once the image has left
// the index, the lines so far come back with the error; the next Remove
// deletes what was left.
func (s *Store) Remove(ref string) ([]string, error) {
	lines, err := s.remove(ref)
	if err != nil {
		return lines, fmt.Errorf("remove image %s: %w", ref, err)
	}
	return lines, nil
}

func (s *Store) remove(ref string) ([]string, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	s.sweepTmp()
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.resolve(ref)
	if err != nil {
		return nil, err
	}
	untag := []string{m.tag}
	if m.tag == "" {
		untag = idx.tagsOf(m.manifest)
	}
	var lines []string
	for _, t := range untag {
		delete(idx.Tags, t)
		lines = append(lines, "Untagged: "+familiarString(t))
	}
	if len(idx.tagsOf(m.manifest)) == 0 {
		rec := idx.Images[m.manifest]
		delete(idx.Images, m.manifest)
		for _, d := range idx.digestsOf(m.manifest) {
			delete(idx.Digests, d)
			delete(idx.Pinned, d)
		}
		lines = append(lines, "Deleted: "+rec.ID)
		used := idx.usedLayers()
		for _, d := range rec.DiffIDs {
			if _, ok := idx.Layers[d]; ok && !used[d] {
				lines = append(lines, "Deleted: "+d)
				delete(idx.Layers, d)
			}
		}
		for d := range idx.Layers {
			if !used[d] {
				delete(idx.Layers, d)
			}
		}
	}
	if err := s.writeIndex(idx); err != nil {
		return nil, err
	}
	_, err = s.collect(idx)
	return lines, err
}

// usedLayers are the layers of the images and of the build cache.
func (idx *index) usedLayers() map[string]bool {
	used := map[string]bool{}
	for _, rec := range idx.Images {
		for _, d := range rec.DiffIDs {
			used[d] = true
		}
	}
	for _, rec := range idx.Cache {
		for _, d := range rec.DiffIDs {
			used[d] = true
		}
	}
	return used
}

// collect deletes the blobs and layers that no image of idx uses, nor its
// build cache: those of the image just removed, and any a killed process
// left. Callers hold the store lock, under which every blob and layer
// enters the store, so nothing unnamed by the index is in use. It returns
// the bytes it freed: the blobs' sizes and the layers' regular files.
func (s *Store) collect(idx *index) (freed int64, err error) {
	blobs := map[string]bool{}
	for m, rec := range idx.Images {
		blobs[m] = true
		blobs[rec.ID] = true
		for _, b := range rec.Blobs {
			blobs[b] = true
		}
	}
	for _, rec := range idx.Cache {
		blobs[rec.Config] = true
		for _, b := range rec.Blobs {
			blobs[b] = true
		}
	}
	layers := idx.usedLayers()
	var errs []error

	entries, err := os.ReadDir(filepath.Join(s.dir, blobsDir))
	if err != nil {
		errs = append(errs, fmt.Errorf("collect blobs: %w", err))
	}
	for _, e := range entries {
		if !blobs["sha256:"+e.Name()] {
			var size int64
			if fi, err := e.Info(); err == nil {
				size = fi.Size()
			}
			if err := os.Remove(filepath.Join(s.dir, blobsDir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("delete blob sha256:%s: %w", e.Name(), err))
			} else if err == nil {
				freed += size
			}
		}
	}

	entries, err = os.ReadDir(filepath.Join(s.dir, layersDir))
	if err != nil {
		errs = append(errs, fmt.Errorf("collect layers: %w", err))
	}
	var doomed []string
	for _, e := range entries {
		if !layers["sha256:"+e.Name()] {
			doomed = append(doomed, e.Name())
		}
	}
	if len(doomed) > 0 {
		// A layer leaves its final name at once (rename) and is deleted
		// from the work folder, so a half-deleted layer is never used.
		o, err := s.newOpLocked()
		if err != nil {
			return freed, errors.Join(append(errs, err)...)
		}
		defer o.close()
		for _, name := range doomed {
			p := o.path("deleted-layer")
			if err := os.Rename(filepath.Join(s.dir, layersDir, name), p); err != nil {
				errs = append(errs, fmt.Errorf("delete layer sha256:%s: %w", name, err))
				continue
			}
			freed += regularBytes(p)
		}
		if err := os.RemoveAll(o.dir); err != nil {
			errs = append(errs, fmt.Errorf("delete layers: %w", err))
		}
	}
	return freed, errors.Join(errs...)
}

// regularBytes is the size of the regular files under dir, as a layer's
// size is counted; what cannot be read counts nothing.
func regularBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
