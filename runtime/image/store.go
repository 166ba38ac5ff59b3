// Package image is berth's local OCI image store: content-addressed blobs,
// tags, and layers unpacked once per diff ID and shared read-only by every
// image and container that uses them.
package image

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Store is the image store under one folder (BERTH_ROOT/images).
type Store struct {
	dir string
}

// Image is one tagged image of the store.
type Image struct {
	// ID is the config digest ("sha256:…"), as docker's image ID.
	ID string
	// Ref is the normalised reference ("docker.io/library/bb:latest");
	// Repo and Tag are its familiar parts ("bb", "latest"). All three are
	// empty for an untagged image, and for an image that Resolve found by
	// ID or digest rather than by a tag.
	Ref, Repo, Tag string
	// Tags are all the image's tags, normalised and sorted.
	Tags []string
	// Digests are the image's repository digests, normalised and sorted
	// ("docker.io/library/redis@sha256:…"): the digests it was pulled by or
	// pushed under, as docker's RepoDigests. Each resolves to the image.
	Digests []string
	// Dangling: the image has no tag, and no repository digest that it
	// was pulled by (a pull by tag records one too, which does not count):
	// what `image prune` removes and `images` shows as <none>.
	Dangling bool
	Created  time.Time
	// Size is the unpacked size of all layers, in bytes, as `docker images`.
	Size int64
	// Config is the image's runtime config (Env, Entrypoint, Cmd,
	// WorkingDir, User, ExposedPorts, Labels, StopSignal, Healthcheck…).
	Config v1.Config
	// DiffIDs are the image's layers, lowest first.
	DiffIDs []v1.Hash
}

// Open opens (creating if needed) the store under dir.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", dir, err)
	}
	for _, d := range []string{"", blobsDir, layersDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	return &Store{dir: abs}, nil
}

// Dir is the store's folder, absolute.
func (s *Store) Dir() string { return s.dir }

// List returns every tagged image, sorted by repository and tag.
func (s *Store) List() ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	configs := map[string]*v1.ConfigFile{}
	var out []Image
	for tag, m := range idx.Tags {
		if _, ok := idx.Images[m]; !ok {
			continue
		}
		img, err := s.image(idx, m, tag, configs)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	sortImages(out)
	return out, nil
}

// ListAll returns every image of the store, tagged or not: an untagged
// image (a "dangling" one, whose tag moved to a newer image, or one loaded
// without a tag) is listed once with an empty Ref, a tagged one once per tag.
func (s *Store) ListAll() ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	configs := map[string]*v1.ConfigFile{}
	var out []Image
	for m := range idx.Images {
		tags := idx.tagsOf(m)
		if len(tags) == 0 {
			tags = []string{""}
		}
		for _, tag := range tags {
			img, err := s.image(idx, m, tag, configs)
			if err != nil {
				return nil, err
			}
			out = append(out, img)
		}
	}
	sortImages(out)
	return out, nil
}

func sortImages(imgs []Image) {
	slices.SortFunc(imgs, func(a, b Image) int {
		return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Tag, b.Tag), cmp.Compare(a.ID, b.ID))
	})
}

// Resolve finds an image by reference ("bb", "bb:1", "docker.io/library/bb")
// or by ID or unique ID prefix. ErrNotFound when there is none, ErrAmbiguous
// when an ID prefix matches several images.
//
// Ref is set only when ref named a tag; Tags lists every tag either way.
func (s *Store) Resolve(ref string) (Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	m, err := idx.resolve(ref)
	if err != nil {
		return Image{}, err
	}
	return s.image(idx, m.manifest, m.tag, nil)
}

// image builds the Image of the manifest m under tag (may be empty). configs
// caches parsed configs across calls.
func (s *Store) image(idx *index, m, tag string, configs map[string]*v1.ConfigFile) (Image, error) {
	rec := idx.Images[m]
	cf := configs[rec.ID]
	if cf == nil {
		var err error
		if cf, err = s.readConfig(rec.ID); err != nil {
			return Image{}, err
		}
		if configs != nil {
			configs[rec.ID] = cf
		}
	}
	img := Image{
		ID:       rec.ID,
		Tags:     idx.tagsOf(m),
		Digests:  idx.digestsOf(m),
		Dangling: idx.dangling(m),
		Created:  rec.Created,
		Size:     rec.Size,
		Config:   cf.Config,
		DiffIDs:  cf.RootFS.DiffIDs,
	}
	if tag != "" {
		img.Ref = tag
		img.Repo, img.Tag = familiar(tag)
	}
	return img, nil
}

func (s *Store) readConfig(id string) (*v1.ConfigFile, error) {
	h, err := parseDigest(id)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	data, err := s.readBlob(h)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, fmt.Errorf("image %s: parse config: %w", id, err)
	}
	return &cf, nil
}

// LayerDirs returns the unpacked directories of img's layers, lowest first,
// ready to be overlay lower directories. An image of no layers has none.
// A layer missing from disk is unpacked again from its blob.
func (s *Store) LayerDirs(img Image) ([]string, error) {
	dirs := make([]string, 0, len(img.DiffIDs))
	var missing bool
	for _, d := range img.DiffIDs {
		if d.Algorithm != "sha256" {
			return nil, fmt.Errorf("image %s: layer %s: only sha256 diff IDs are supported", img.ID, d)
		}
		p := s.layerPath(d)
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			missing = true
		}
		dirs = append(dirs, p)
	}
	if missing {
		if err := s.restoreLayers(img); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}

// restoreLayers unpacks again the layers of img that are not on disk.
func (s *Store) restoreLayers(img Image) (err error) {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	s.sweepTmp()
	o, err := s.newOpLocked()
	if err != nil {
		return err
	}
	defer o.close()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	changed := false
	for _, d := range img.DiffIDs {
		if _, err := os.Stat(s.layerPath(d)); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("image %s: layer %s: %w", img.ID, d, err)
		}
		blob, ok := idx.blobOf(d.String())
		if !ok {
			return fmt.Errorf("image %s: layer %s: %w: no blob to unpack it from; load the image again", img.ID, d, ErrNotFound)
		}
		bh, err := parseDigest(blob)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.ID, err)
		}
		l, err := unpackBlob(context.Background(), s.blobPath(bh), o.path("layer"), d, bh)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.ID, err)
		}
		if err := os.Rename(l.dir, s.layerPath(d)); err != nil {
			return fmt.Errorf("image %s: layer %s: %w", img.ID, d, err)
		}
		idx.Layers[d.String()] = layerRecord{Size: l.size}
		changed = true
	}
	if changed {
		return s.writeIndex(idx)
	}
	return nil
}
