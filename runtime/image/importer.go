package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Changes are Dockerfile-like instructions applied to the config, as
	// `docker import --change` (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL,
	// EXPOSE, STOPSIGNAL; also VOLUME and HEALTHCHECK).
	Changes []string
}

// Import makes an image of one layer from a root filesystem tarball
// (plain, gzip or zstd), tagged ref ("bb" means bb:latest), as `docker import`.
// An empty ref makes an untagged image.
//
// The tarball is stored as it came, compressed or not, as the layer's blob;
// a tarball the store already holds is not unpacked again.
func (s *Store) Import(ctx context.Context, r io.Reader, ref string, opts ImportOptions) (Image, error) {
	img, err := s.importTar(ctx, r, ref, opts)
	if err != nil {
		if ref == "" {
			return Image{}, fmt.Errorf("import: %w", err)
		}
		return Image{}, fmt.Errorf("import %s: %w", ref, err)
	}
	return img, nil
}

func (s *Store) importTar(ctx context.Context, r io.Reader, ref string, opts ImportOptions) (Image, error) {
	var tags []string
	if ref != "" {
		t, err := normaliseTag(ref)
		if err != nil {
			return Image{}, err
		}
		tags = []string{t}
	}
	var cfg v1.Config
	if err := applyChanges(&cfg, opts.Changes); err != nil {
		return Image{}, err
	}

	o, err := s.newOp()
	if err != nil {
		return Image{}, err
	}
	defer o.close()
	layer, err := spool(ctx, r, o.path("import"))
	if err != nil {
		return Image{}, fmt.Errorf("read tarball: %w", err)
	}
	if layer.size == 0 {
		return Image{}, fmt.Errorf("%w: the tarball is empty", ErrBadArchive)
	}
	comp, err := fileCompression(layer.path)
	if err != nil {
		return Image{}, fmt.Errorf("read tarball: %w", err)
	}

	// The diff ID is known without unpacking for a plain tar (its own
	// digest) and for a compressed blob that an image of the store uses.
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	var diffID v1.Hash
	if comp == uncompressed {
		diffID = layer.digest
	} else if d, ok := idx.diffIDOf(layer.digest.String()); ok {
		if diffID, err = parseDigest(d); err != nil {
			return Image{}, err
		}
	}
	prepared := map[v1.Hash]unpackedLayer{}
	if diffID == (v1.Hash{}) || !s.hasLayer(idx, diffID) {
		l, err := unpackBlob(ctx, layer.path, o.path("layer"), diffID, layer.digest)
		if err != nil {
			return Image{}, err
		}
		diffID = l.diffID
		prepared[diffID] = l
	}

	now := v1.Time{Time: time.Now().UTC()}
	cf := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      now,
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		Config:       cfg,
		History:      []v1.History{{Created: now, CreatedBy: "berth image import", Comment: "Imported from a tarball"}},
	}
	data, err := json.Marshal(cf)
	if err != nil {
		return Image{}, fmt.Errorf("write config: %w", err)
	}
	config, err := spoolBytes(data, o.path("config"))
	if err != nil {
		return Image{}, fmt.Errorf("write config: %w", err)
	}
	manifest, err := makeManifest(o, config, []spooled{layer})
	if err != nil {
		return Image{}, err
	}
	p := &pendingImage{tags: tags, manifest: manifest, config: config, cf: cf, layers: []spooled{layer}}
	imgs, err := s.commit(ctx, o, []*pendingImage{p}, prepared)
	if err != nil {
		return Image{}, err
	}
	return imgs[0], nil
}

// makeManifest writes the OCI manifest of a config and of layer blobs
// stored as they came (their media type told by their magic bytes).
func makeManifest(o *op, config spooled, layers []spooled) (spooled, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: config.size, Digest: config.digest},
		Layers:        []v1.Descriptor{},
	}
	for _, l := range layers {
		c, err := fileCompression(l.path)
		if err != nil {
			return spooled{}, fmt.Errorf("layer %s: %w", l.digest, err)
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(c.layerMediaType()), Size: l.size, Digest: l.digest})
	}
	data, err := json.Marshal(m)
	if err != nil {
		return spooled{}, fmt.Errorf("write manifest: %w", err)
	}
	sp, err := spoolBytes(data, o.path("manifest"))
	if err != nil {
		return spooled{}, fmt.Errorf("write manifest: %w", err)
	}
	return sp, nil
}
