package image

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/distribution/reference"
)

// PruneOptions tune Prune.
type PruneOptions struct {
	// All prunes every image that no container uses, not only the
	// dangling ones.
	All bool
	// InUse tells whether a container uses the image whose ID (config
	// digest) is id: such an image is kept. Nil: no container uses any.
	InUse func(id string) bool
}

// PruneReport is what Prune did.
type PruneReport struct {
	// Deleted lists, image by image, the names taken off each and then
	// the image and the layers deleted with it, as docker's report.
	Deleted []DeleteItem
	// Reclaimed is the bytes freed on disk: blobs and unpacked layers,
	// those of the pruned images and any left unused before.
	Reclaimed int64
}

// DeleteItem is one line of a PruneReport: either a reference taken off an
// image ("bb:latest", "redis@sha256:…") or an image ID or layer diff ID
// deleted.
type DeleteItem struct {
	Untagged string
	Deleted  string
}

// Prune deletes the dangling images (Image.Dangling), or with opts.All every
// image, that no container uses, then every blob and layer that no image
// and no step of the build cache uses (the cache is kept: PruneBuildCache
// drops it).
//
// Which containers use an image is the caller's to say; an image a
// container starts using while Prune runs is not protected.
func (s *Store) Prune(opts PruneOptions) (PruneReport, error) {
	r, err := s.prune(opts)
	if err != nil {
		return r, fmt.Errorf("prune images: %w", err)
	}
	return r, nil
}

func (s *Store) prune(opts PruneOptions) (PruneReport, error) {
	unlock, err := s.lock()
	if err != nil {
		return PruneReport{}, err
	}
	defer unlock()
	s.sweepTmp()
	idx, err := s.readIndex()
	if err != nil {
		return PruneReport{}, err
	}
	var r PruneReport
	doomed := idx.prunable(opts)
	var recs []*imageRecord
	for _, m := range doomed {
		for _, t := range idx.tagsOf(m) {
			delete(idx.Tags, t)
			r.Deleted = append(r.Deleted, DeleteItem{Untagged: familiarRef(t)})
		}
		for _, d := range idx.digestsOf(m) {
			delete(idx.Digests, d)
			delete(idx.Pinned, d)
			r.Deleted = append(r.Deleted, DeleteItem{Untagged: familiarRef(d)})
		}
		rec := idx.Images[m]
		delete(idx.Images, m)
		recs = append(recs, rec)
		r.Deleted = append(r.Deleted, DeleteItem{Deleted: rec.ID})
	}
	// The layers are reported after the images: one of them may be shared
	// by two images pruned together.
	used := idx.usedLayers()
	for _, rec := range recs {
		for _, d := range rec.DiffIDs {
			if _, ok := idx.Layers[d]; ok && !used[d] {
				delete(idx.Layers, d)
				r.Deleted = append(r.Deleted, DeleteItem{Deleted: d})
			}
		}
	}
	changed := len(doomed) > 0
	for d := range idx.Layers {
		if !used[d] {
			delete(idx.Layers, d)
			changed = true
		}
	}
	if changed {
		if err := s.writeIndex(idx); err != nil {
			return PruneReport{}, err
		}
	}
	// Collected even when no image went: blobs and layers of interrupted
	// pulls and builds, and those the index dropped above.
	r.Reclaimed, err = s.collect(idx)
	return r, err
}

// prunable returns the manifests of the images that Prune deletes, oldest
// first.
func (idx *index) prunable(opts PruneOptions) []string {
	var out []string
	for m, rec := range idx.Images {
		if opts.InUse != nil && opts.InUse(rec.ID) {
			continue
		}
		if !opts.All && !idx.dangling(m) {
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b string) int {
		ra, rb := idx.Images[a], idx.Images[b]
		return cmp.Or(ra.Created.Compare(rb.Created), cmp.Compare(ra.ID, rb.ID))
	})
	return out
}

// dangling tells whether the image of manifest m has no tag and no
// repository digest that it was pulled by.
func (idx *index) dangling(m string) bool {
	for _, mm := range idx.Tags {
		if mm == m {
			return false
		}
	}
	for d, mm := range idx.Digests {
		if mm == m && idx.Pinned[d] {
			return false
		}
	}
	return true
}

// familiarRef is the short form docker prints of a normalised tag or
// repository digest: "bb:latest", "redis@sha256:…".
func familiarRef(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(named)
}
