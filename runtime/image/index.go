package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The store's folder:
//
//	lock               flock(2) held around every mutation
//	repositories.json  the index: tags, images, unpacked layers
//	blobs/sha256/<hex> content-addressed blobs (manifests, configs, layers)
//	layers/<hex>/      one unpacked layer per diff ID, an overlay lower dir
//	tmp/<op>/          private work folder of one operation (spool, unpack)
//
// Files and folders reach their final names only by rename(2) or link(2) of
// a complete, verified file, so a killed process leaves no half-written blob
// or layer under a final name, only work folders under tmp/ (removed by the
// next mutation) and, at worst, blobs or layers that the index does not name
// (removed by the next Remove). Pull links each blob into blobs/ as soon as
// it is verified, so that the next pull after an interrupted one reuses it.
const (
	lockFile  = "lock"
	indexFile = "repositories.json"
	blobsDir  = "blobs/sha256"
	layersDir = "layers"
	tmpDir    = "tmp"
)

// index is repositories.json. Digests are kept as their "sha256:<hex>"
// strings, checked when they enter the store.
type index struct {
	// Tags maps normalised references to manifest digests.
	Tags map[string]string `json:"tags"`
	// Images maps manifest digests to what List and Remove need without
	// reading blobs. Each config digest (image ID) appears once.
	Images map[string]*imageRecord `json:"images"`
	// Layers maps diff IDs to the unpacked layers under layers/.
	Layers map[string]layerRecord `json:"layers"`
	// Digests maps repository digests ("docker.io/library/redis@sha256:…",
	// the digest a registry serves the image under, perhaps that of a
	// multi-platform index) to manifest digests, as docker's RepoDigests.
	Digests map[string]string `json:"digests,omitempty"`
	// Pinned are the repository digests of Digests that the image was
	// pulled by (rather than recorded by a pull by tag or a push): as a
	// tag, they keep an untagged image from being dangling (prune.go).
	Pinned map[string]bool `json:"pinned,omitempty"`
	// Cache maps the cache keys of build steps to what each step made
	// (buildcache.go). The blobs and layers a record names are kept by
	// Remove as an image's are, until PruneBuildCache drops the record.
	Cache map[string]*cacheRecord `json:"buildCache,omitempty"`
}

type imageRecord struct {
	// ID is the config digest.
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`
	// DiffIDs and Blobs are the layers, lowest first: Blobs[i] is the blob
	// that unpacks to DiffIDs[i].
	DiffIDs []string `json:"diffIDs"`
	Blobs   []string `json:"blobs"`
}

type layerRecord struct {
	// Size is the sum of the sizes of the layer's regular files.
	Size int64 `json:"size"`
}

func newIndex() *index {
	return &index{
		Tags:    map[string]string{},
		Images:  map[string]*imageRecord{},
		Layers:  map[string]layerRecord{},
		Digests: map[string]string{},
		Pinned:  map[string]bool{},
		Cache:   map[string]*cacheRecord{},
	}
}

// readIndex reads repositories.json; readers need no lock because the file is
// only ever replaced whole.
func (s *Store) readIndex() (*index, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return newIndex(), nil
	} else if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	idx := newIndex()
	if err := json.Unmarshal(data, idx); err != nil {
		return nil, fmt.Errorf("read image index %s: %w", filepath.Join(s.dir, indexFile), err)
	}
	if idx.Tags == nil {
		idx.Tags = map[string]string{}
	}
	if idx.Images == nil {
		idx.Images = map[string]*imageRecord{}
	}
	if idx.Layers == nil {
		idx.Layers = map[string]layerRecord{}
	}
	if idx.Digests == nil {
		idx.Digests = map[string]string{}
	}
	if idx.Pinned == nil {
		idx.Pinned = map[string]bool{}
	}
	if idx.Cache == nil {
		idx.Cache = map[string]*cacheRecord{}
	}
	return idx, nil
}

// writeIndex replaces repositories.json atomically. Callers hold the lock.
func (s *Store) writeIndex(idx *index) error {
	data, err := json.MarshalIndent(idx, "", "\t")
	if err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, indexFile), data); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to name, syncs it and
// renames it over name.
func writeFileAtomic(name string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// tagsOf returns the tags that point at manifest, sorted.
func (idx *index) tagsOf(manifest string) []string {
	var tags []string
	for ref, m := range idx.Tags {
		if m == manifest {
			tags = append(tags, ref)
		}
	}
	slices.Sort(tags)
	return tags
}

// digestsOf returns the repository digests that point at manifest, sorted.
func (idx *index) digestsOf(manifest string) []string {
	var out []string
	for ref, m := range idx.Digests {
		if m == manifest {
			out = append(out, ref)
		}
	}
	slices.Sort(out)
	return out
}

// byID returns the manifest digest of the image whose config digest is id.
func (idx *index) byID(id string) (string, bool) {
	for m, rec := range idx.Images {
		if rec.ID == id {
			return m, true
		}
	}
	return "", false
}

// blobOf returns a blob that unpacks to diffID, from the records of the
// images and then of the build cache.
func (idx *index) blobOf(diffID string) (string, bool) {
	for _, rec := range idx.Images {
		for i, d := range rec.DiffIDs {
			if d == diffID && i < len(rec.Blobs) {
				return rec.Blobs[i], true
			}
		}
	}
	for _, rec := range idx.Cache {
		for i, d := range rec.DiffIDs {
			if d == diffID && i < len(rec.Blobs) {
				return rec.Blobs[i], true
			}
		}
	}
	return "", false
}

// diffIDOf returns the diff ID that blob unpacks to, when an image of the
// store already uses that blob.
func (idx *index) diffIDOf(blob string) (string, bool) {
	for _, rec := range idx.Images {
		for i, b := range rec.Blobs {
			if b == blob && i < len(rec.DiffIDs) {
				return rec.DiffIDs[i], true
			}
		}
	}
	return "", false
}
