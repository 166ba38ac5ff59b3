package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// pendingImage is an image read from an archive or made by Import, whose
// blobs wait in the operation's folder.
type pendingImage struct {
	// tags are normalised references.
	tags []string
	// digests are repository digests ("repo@sha256:…") that name the image.
	digests []string
	// pinned: the image was pulled by its digests, which keep it from
	// being dangling.
	pinned   bool
	manifest spooled
	config   spooled
	cf       *v1.ConfigFile
	// layers are the layer blobs, lowest first, one per cf.RootFS.DiffIDs.
	layers []spooled
}

// prepareLayers unpacks, in the operation's folder and without the store
// lock, the layers of imgs that the store does not have yet. The lock is
// held only for the renames of commit.
func (s *Store) prepareLayers(ctx context.Context, o *op, imgs []*pendingImage) (map[v1.Hash]unpackedLayer, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	out := map[v1.Hash]unpackedLayer{}
	for _, p := range imgs {
		if _, ok := idx.byID(p.config.digest.String()); ok {
			continue
		}
		for i, d := range p.cf.RootFS.DiffIDs {
			if _, ok := out[d]; ok || s.hasLayer(idx, d) {
				continue
			}
			l, err := unpackBlob(ctx, p.layers[i].path, o.path("layer"), d, p.layers[i].digest)
			if err != nil {
				return nil, err
			}
			out[d] = l
		}
	}
	return out, nil
}

// hasLayer tells whether the layer diffID is unpacked and known to the index.
func (s *Store) hasLayer(idx *index, diffID v1.Hash) bool {
	if _, ok := idx.Layers[diffID.String()]; !ok {
		return false
	}
	fi, err := os.Stat(s.layerPath(diffID))
	return err == nil && fi.IsDir()
}

// commit moves the blobs and unpacked layers of imgs into the store and
// records them and their tags in the index, under the store lock. Either
// all of it happens or, on error, whatever it had moved is removed again.
// It returns one Image per tag, or one untagged Image for an image of no tag.
func (s *Store) commit(ctx context.Context, o *op, imgs []*pendingImage, prepared map[v1.Hash]unpackedLayer) (out []Image, err error) {
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
	var created []string
	defer func() {
		if err != nil {
			for _, p := range created {
				os.RemoveAll(p)
			}
		}
	}()

	type result struct {
		manifest string
		tags     []string
	}
	var results []result
	for _, p := range imgs {
		m := p.manifest.digest.String()
		if existing, ok := idx.byID(p.config.digest.String()); ok {
			// The same image, perhaps under another manifest (compressed
			// otherwise): keep the one the store has.
			m = existing
		} else {
			rec, err := s.place(ctx, o, idx, p, prepared, &created)
			if err != nil {
				return nil, err
			}
			idx.Images[m] = rec
		}
		for _, t := range p.tags {
			idx.Tags[t] = m
		}
		for _, d := range p.digests {
			idx.Digests[d] = m
			if p.pinned {
				idx.Pinned[d] = true
			}
		}
		results = append(results, result{m, p.tags})
	}
	if err := s.writeIndex(idx); err != nil {
		return nil, err
	}

	configs := map[string]*v1.ConfigFile{}
	for _, r := range results {
		tags := r.tags
		if len(tags) == 0 {
			tags = []string{""}
		}
		for _, t := range tags {
			img, err := s.image(idx, r.manifest, t, configs)
			if err != nil {
				// The images are in; only describing them failed.
				return out, err
			}
			out = append(out, img)
		}
	}
	return out, nil
}

// place moves the blobs and layers of one new image into the store and
// returns its record. The paths it creates are appended to created.
func (s *Store) place(ctx context.Context, o *op, idx *index, p *pendingImage, prepared map[v1.Hash]unpackedLayer, created *[]string) (*imageRecord, error) {
	blobs := append([]spooled{p.config, p.manifest}, p.layers...)
	for _, b := range blobs {
		made, err := s.placeBlob(b)
		if err != nil {
			return nil, err
		}
		if made {
			*created = append(*created, s.blobPath(b.digest))
		}
	}
	rec := &imageRecord{
		ID:      p.config.digest.String(),
		Created: p.cf.Created.Time,
		DiffIDs: []string{},
		Blobs:   []string{},
	}
	for i, d := range p.cf.RootFS.DiffIDs {
		size, err := s.placeLayer(ctx, o, idx, d, p.layers[i].digest, prepared, created)
		if err != nil {
			return nil, err
		}
		rec.Size += size
		rec.DiffIDs = append(rec.DiffIDs, d.String())
		rec.Blobs = append(rec.Blobs, p.layers[i].digest.String())
	}
	return rec, nil
}

// placeLayer makes sure the layer diffID is under layers/: already there,
// prepared by prepareLayers, or (when a Remove took it away meanwhile)
// unpacked now from its blob. It returns the layer's size.
func (s *Store) placeLayer(ctx context.Context, o *op, idx *index, d, blob v1.Hash, prepared map[v1.Hash]unpackedLayer, created *[]string) (int64, error) {
	if s.hasLayer(idx, d) {
		return idx.Layers[d.String()].Size, nil
	}
	final := s.layerPath(d)
	// A folder the index does not know is what a killed process left
	// between its rename and its index write: complete, but of unknown
	// size. Put it out of the way and use ours.
	if _, err := os.Lstat(final); err == nil {
		if err := os.Rename(final, o.path("stale-layer")); err != nil {
			return 0, fmt.Errorf("layer %s: remove stale folder: %w", d, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	l, ok := prepared[d]
	if !ok {
		var err error
		l, err = unpackBlob(ctx, s.blobPath(blob), o.path("layer"), d, blob)
		if err != nil {
			return 0, err
		}
	}
	if err := os.Rename(l.dir, final); err != nil {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	*created = append(*created, final)
	idx.Layers[d.String()] = layerRecord{Size: l.size}
	return l.size, nil
}
