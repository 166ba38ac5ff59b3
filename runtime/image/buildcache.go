package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// What a Dockerfile build needs of the store: each step of a build ends in
// an image config (a blob), perhaps with one new layer, recorded in the
// build cache under the step's key, so that the next build with the same
// parent and instruction takes it as it is. The final image is made of the
// last step's config (CommitImage). A step's layer and config enter the
// store with its cache record, under the store lock, so that no Remove in
// between ever sees them unnamed.

// cacheRecord is one build step of the cache.
type cacheRecord struct {
	// Config is the digest of the config the step led to.
	Config string `json:"config"`
	// DiffIDs and Blobs are that config's layers, lowest first, as
	// imageRecord's: the layers the step inherited, and its own.
	DiffIDs []string  `json:"diffIDs"`
	Blobs   []string  `json:"blobs"`
	Created time.Time `json:"created"`
}

// Step is where a build step led: an image config of the store.
type Step struct {
	// ID is the digest of the config, as an image ID: the parent that the
	// next step's cache key names.
	ID     string
	Config *v1.ConfigFile
}

// StepCommit is what CommitStep stores.
type StepCommit struct {
	// Key is the step's cache key; empty: the step is not cached.
	Key string
	// Config is the config after the step, with the layers and history of
	// before it: CommitStep appends the step's layer (if it has one) and
	// History. It is not modified.
	Config *v1.ConfigFile
	// Diff is a folder of the step's changes in overlay form (an overlay
	// upper directory: deletions as 0/0 character devices, replaced
	// directories marked trusted.overlay.opaque=y), or empty for a step that
	// changes only the config. It is read, not moved; a folder of no
	// changes makes no layer.
	Diff    string
	History v1.History
}

// WorkDir is a private folder under the store's tmp/: on the store's
// filesystem, removed by Close, and by the next change of the store should
// the process die first.
type WorkDir struct {
	o *op
}

// NewWorkDir makes a work folder.
func (s *Store) NewWorkDir() (*WorkDir, error) {
	o, err := s.newOp()
	if err != nil {
		return nil, err
	}
	return &WorkDir{o: o}, nil
}

// Path returns a new unused name in the folder, starting with prefix.
func (w *WorkDir) Path(prefix string) string { return w.o.path(prefix) }

// Close removes the folder and everything in it.
func (w *WorkDir) Close() { w.o.close() }

// ConfigFile reads the whole config of the image whose ID (config digest)
// is id: its layers, history and platform besides its runtime config.
func (s *Store) ConfigFile(id string) (*v1.ConfigFile, error) {
	return s.readConfig(id)
}

// CachedStep returns the step recorded under key, if the cache has it and
// the store still has its config and every one of its layers.
func (s *Store) CachedStep(key string) (Step, bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Step{}, false, err
	}
	rec, ok := idx.Cache[key]
	if !ok {
		return Step{}, false, nil
	}
	for _, d := range rec.DiffIDs {
		h, err := parseDigest(d)
		if err != nil || !s.hasLayer(idx, h) {
			return Step{}, false, nil
		}
	}
	cf, err := s.readConfig(rec.Config)
	if errors.Is(err, fs.ErrNotExist) {
		return Step{}, false, nil
	} else if err != nil {
		return Step{}, false, err
	}
	return Step{ID: rec.Config, Config: cf}, true, nil
}

// CommitStep stores the result of one build step: its layer (the tarball
// of c.Diff, kept uncompressed, unpacked once more as the store's layers
// are) and its config, and records them under c.Key. A cancelled ctx or an
// error leaves the store as it was.
func (s *Store) CommitStep(ctx context.Context, c StepCommit) (Step, error) {
	o, err := s.newOp()
	if err != nil {
		return Step{}, err
	}
	defer o.close()
	cf := c.Config.DeepCopy()
	cf.RootFS.Type = "layers"
	if cf.RootFS.DiffIDs == nil {
		cf.RootFS.DiffIDs = []v1.Hash{}
	}
	hist := c.History
	var layer *spooled
	prepared := map[v1.Hash]unpackedLayer{}
	if c.Diff != "" {
		sp, n, err := spoolDiff(ctx, c.Diff, o.path("diff"))
		if err != nil {
			return Step{}, fmt.Errorf("commit layer: %w", err)
		}
		if n > 0 {
			layer = &sp
			idx, err := s.readIndex()
			if err != nil {
				return Step{}, err
			}
			if !s.hasLayer(idx, sp.digest) {
				// Unpacked from the tarball, not taken from the folder:
				// the layer is then exactly what the blob says, checked
				// as a pulled one.
				l, err := unpackBlob(ctx, sp.path, o.path("layer"), sp.digest, sp.digest)
				if err != nil {
					return Step{}, fmt.Errorf("commit layer: %w", err)
				}
				prepared[sp.digest] = l
			}
			cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, sp.digest)
		}
	}
	hist.EmptyLayer = layer == nil
	cf.History = append(cf.History, hist)
	data, err := json.Marshal(cf)
	if err != nil {
		return Step{}, fmt.Errorf("write config: %w", err)
	}
	config, err := spoolBytes(data, o.path("config"))
	if err != nil {
		return Step{}, fmt.Errorf("write config: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Step{}, err
	}
	if err := s.placeStep(ctx, o, c.Key, config, layer, cf, prepared); err != nil {
		return Step{}, err
	}
	return Step{ID: config.digest.String(), Config: cf}, nil
}

// spoolDiff writes the tarball of the changes in dir to the new file p,
// and returns it with its number of entries.
func spoolDiff(ctx context.Context, dir, p string) (sp spooled, n int, err error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return spooled{}, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(p)
		}
	}()
	h := sha256.New()
	cw := &countWriter{}
	if n, err = writeDiffTar(ctx, dir, io.MultiWriter(f, h, cw)); err != nil {
		return spooled{}, 0, err
	}
	return spooled{path: p, digest: sha256Hash(h.Sum(nil)), size: cw.n}, n, nil
}

// placeStep moves a step's blobs and layer into the store and records the
// step in the cache, under the store lock; on error whatever it had moved
// is removed again.
func (s *Store) placeStep(ctx context.Context, o *op, key string, config spooled, layer *spooled, cf *v1.ConfigFile, prepared map[v1.Hash]unpackedLayer) (err error) {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	s.sweepTmp()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	var created []string
	defer func() {
		if err != nil {
			for _, p := range created {
				os.RemoveAll(p)
			}
		}
	}()
	blobs := []spooled{config}
	if layer != nil {
		blobs = append(blobs, *layer)
	}
	for _, b := range blobs {
		made, err := s.placeBlob(b)
		if err != nil {
			return err
		}
		if made {
			created = append(created, s.blobPath(b.digest))
		}
	}
	if layer != nil {
		if _, err := s.placeLayer(ctx, o, idx, layer.digest, layer.digest, prepared, &created); err != nil {
			return err
		}
	}
	if key == "" {
		// Nothing names the step: the config and layer are garbage for
		// the next Remove unless an image takes them first. Only tests
		// commit uncached steps.
		return s.writeIndex(idx)
	}
	rec := &cacheRecord{Config: config.digest.String(), Created: time.Now().UTC(), DiffIDs: []string{}, Blobs: []string{}}
	for _, d := range cf.RootFS.DiffIDs {
		b, ok := idx.blobOf(d.String())
		if !ok && layer != nil && d == layer.digest {
			b, ok = d.String(), true
		}
		if !ok {
			return fmt.Errorf("layer %s: %w: no blob of it in the store", d, ErrNotFound)
		}
		rec.DiffIDs = append(rec.DiffIDs, d.String())
		rec.Blobs = append(rec.Blobs, b)
	}
	idx.Cache[key] = rec
	return s.writeIndex(idx)
}

// CommitImage makes the image of config cf, whose layers are all in the
// store (a build's last step), tagged with tags (references as the user
// writes them); an image of no tag is left untagged. An image of the same
// config that the store has already is only tagged. It returns the image as
// Resolve would, by its first tag.
func (s *Store) CommitImage(ctx context.Context, cf *v1.ConfigFile, tags []string) (Image, error) {
	var norm []string
	for _, t := range tags {
		n, err := normaliseTag(t)
		if err != nil {
			return Image{}, err
		}
		norm = append(norm, n)
	}
	o, err := s.newOp()
	if err != nil {
		return Image{}, err
	}
	defer o.close()
	data, err := json.Marshal(cf)
	if err != nil {
		return Image{}, fmt.Errorf("write config: %w", err)
	}
	config, err := spoolBytes(data, o.path("config"))
	if err != nil {
		return Image{}, fmt.Errorf("write config: %w", err)
	}
	if img, ok, err := s.nameImage(config.digest.String(), norm, nil, false); err != nil || ok {
		return img, err
	}
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	var layers []spooled
	for _, d := range cf.RootFS.DiffIDs {
		b, ok := idx.blobOf(d.String())
		if !ok {
			return Image{}, fmt.Errorf("layer %s: %w: no blob of it in the store; build again", d, ErrNotFound)
		}
		h, err := parseDigest(b)
		if err != nil {
			return Image{}, err
		}
		var st unix.Stat_t
		if err := unix.Stat(s.blobPath(h), &st); err != nil {
			return Image{}, fmt.Errorf("layer %s: blob %s: %w; build again", d, h, err)
		}
		// The blob is in the store already: place keeps it where it is.
		layers = append(layers, spooled{path: s.blobPath(h), digest: h, size: st.Size})
	}
	manifest, err := makeManifest(o, config, layers)
	if err != nil {
		return Image{}, err
	}
	p := &pendingImage{tags: norm, manifest: manifest, config: config, cf: cf, layers: layers}
	imgs, err := s.commit(ctx, o, []*pendingImage{p}, nil)
	if err != nil {
		return Image{}, err
	}
	return imgs[0], nil
}

// PruneBuildCache forgets every step of the build cache and deletes the
// blobs and layers that no image uses. It returns how many steps it forgot.
func (s *Store) PruneBuildCache() (int, error) {
	unlock, err := s.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	s.sweepTmp()
	idx, err := s.readIndex()
	if err != nil {
		return 0, err
	}
	n := len(idx.Cache)
	if n == 0 {
		return 0, nil
	}
	clear(idx.Cache)
	used := idx.usedLayers()
	for d := range idx.Layers {
		if !used[d] {
			delete(idx.Layers, d)
		}
	}
	if err := s.writeIndex(idx); err != nil {
		return 0, err
	}
	_, err = s.collect(idx)
	return n, err
}
