package image

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	dockerManifestFile = "manifest.json"
	ociIndexFile       = "index.json"

	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerdRef = "io.containerd.image.name"

	// maxIndexDepth bounds nested indexes.
	maxIndexDepth = 4
)

// dockerManifestEntry is one image of a docker save's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerImages reads a `docker save` tarball. Docker ≥ 25 writes an OCI
// layout beside manifest.json; manifest.json is read as it is always there.
func (a *archive) dockerImages(o *op) ([]*pendingImage, error) {
	data, _, err := a.read(dockerManifestFile)
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadArchive, dockerManifestFile, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: %s lists no image", ErrBadArchive, dockerManifestFile)
	}
	var out []*pendingImage
	for _, e := range entries {
		p, err := a.dockerImage(o, e)
		if err != nil {
			return nil, fmt.Errorf("image %s of %s: %w", e.Config, dockerManifestFile, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (a *archive) dockerImage(o *op, e dockerManifestEntry) (*pendingImage, error) {
	data, config, err := a.read(e.Config)
	if err != nil {
		return nil, err
	}
	cf, err := parseConfig(data)
	if err != nil {
		return nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("%w: the config has %d layers, %s lists %d", ErrBadArchive, len(cf.RootFS.DiffIDs), dockerManifestFile, len(e.Layers))
	}
	var layers []spooled
	for _, l := range e.Layers {
		sp, err := a.file(l)
		if err != nil {
			return nil, err
		}
		layers = append(layers, sp)
	}
	// The layers stay as they came, compressed or not: the manifest berth
	// writes points at them as they are.
	manifest, err := makeManifest(o, config, layers)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, t := range e.RepoTags {
		n, err := normaliseTag(t)
		if err != nil {
			return nil, fmt.Errorf("%w: RepoTags: %w", ErrBadArchive, err)
		}
		tags = append(tags, n)
	}
	return &pendingImage{tags: tags, manifest: manifest, config: config, cf: cf, layers: layers}, nil
}

func parseConfig(data []byte) (*v1.ConfigFile, error) {
	var cf v1.ConfigFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, fmt.Errorf("%w: image config: %w", ErrBadArchive, err)
	}
	for _, d := range cf.RootFS.DiffIDs {
		if d.Algorithm != "sha256" {
			return nil, fmt.Errorf("%w: image config: diff ID %s: only sha256 is supported", ErrBadArchive, d)
		}
	}
	return &cf, nil
}

// ociImages reads an OCI image archive: each descriptor of index.json is an
// image, or an index of which the linux/GOARCH image is taken.
func (a *archive) ociImages() ([]*pendingImage, error) {
	data, _, err := a.read(ociIndexFile)
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadArchive, ociIndexFile, err)
	}
	if len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("%w: %s lists no image", ErrBadArchive, ociIndexFile)
	}
	// The same image may be listed under several names.
	var order []v1.Hash
	images := map[v1.Hash]*pendingImage{}
	for _, d := range idx.Manifests {
		md, err := a.pickManifest(d, 0)
		if err != nil {
			return nil, err
		}
		p, ok := images[md.Digest]
		if !ok {
			if p, err = a.ociImage(md); err != nil {
				return nil, fmt.Errorf("image %s: %w", md.Digest, err)
			}
			images[md.Digest] = p
			order = append(order, md.Digest)
		}
		if t := annotatedTag(d.Annotations); t != "" {
			p.tags = append(p.tags, t)
		}
	}
	var out []*pendingImage
	for _, h := range order {
		out = append(out, images[h])
	}
	return out, nil
}

// annotatedTag is the tag of an index.json entry: containerd's (and docker's)
// full name, else the OCI ref.name when it is a full reference. A bare
// ref.name ("latest", "1.0") names no repository: the image stays untagged,
// as an unusable name would be.
func annotatedTag(ann map[string]string) string {
	name := ann[annotationContainerdRef]
	if name == "" {
		name = ann[annotationRefName]
		if !strings.ContainsAny(name, "/:") {
			return ""
		}
	}
	t, err := normaliseTag(name)
	if err != nil {
		return ""
	}
	return t
}

// pickManifest follows d down nested indexes to one image manifest.
func (a *archive) pickManifest(d v1.Descriptor, depth int) (v1.Descriptor, error) {
	if depth > maxIndexDepth {
		return v1.Descriptor{}, fmt.Errorf("%w: indexes nested deeper than %d", ErrBadArchive, maxIndexDepth)
	}
	data, _, err := a.blobData(d)
	if err != nil {
		return v1.Descriptor{}, err
	}
	var probe struct {
		MediaType types.MediaType
		Manifests json.RawMessage
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w: %s: %w", ErrBadArchive, d.Digest, err)
	}
	mt := d.MediaType
	if mt == "" {
		mt = probe.MediaType
	}
	switch {
	case mt.IsIndex() || (mt == "" && probe.Manifests != nil):
		var idx v1.IndexManifest
		if err := json.Unmarshal(data, &idx); err != nil {
			return v1.Descriptor{}, fmt.Errorf("%w: index %s: %w", ErrBadArchive, d.Digest, err)
		}
		child, err := choosePlatform(idx.Manifests, hostPlatform())
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		return a.pickManifest(child, depth+1)
	case mt.IsImage() || mt == "":
		return d, nil
	}
	return v1.Descriptor{}, fmt.Errorf("%w: %s: unsupported media type %q", ErrBadArchive, d.Digest, mt)
}

// hostPlatform is the platform images are chosen for: linux/GOARCH, of the
// architecture's default variant.
func hostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// choosePlatform picks the entry of an index for want. An entry of no
// platform is a last resort; with no variant wanted, the architecture's
// default variant (or none) is preferred to others.
func choosePlatform(descs []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	best, bestScore := -1, 0
	var have []string
	for i, d := range descs {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() && d.MediaType != "" {
			continue
		}
		score := 1 // no platform given: a last resort
		if p := d.Platform; p != nil {
			have = append(have, p.String())
			if p.OS != want.OS || p.Architecture != want.Architecture {
				continue
			}
			switch {
			case want.Variant != "" && p.Variant == want.Variant:
				score = 3
			case want.Variant != "" && p.Variant != "":
				// Another variant of the architecture than asked for.
				continue
			case want.Variant != "":
				score = 2
			case p.Variant == "" || p.Variant == defaultVariant(want.Architecture):
				score = 3
			default:
				score = 2
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return v1.Descriptor{}, fmt.Errorf("no image for %s (it has %s)", platformString(want), strings.Join(have, ", "))
	}
	return descs[best], nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func defaultVariant(arch string) string {
	switch arch {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// ociImage reads an image manifest and finds its config and layers.
func (a *archive) ociImage(md v1.Descriptor) (*pendingImage, error) {
	data, manifest, err := a.blobData(md)
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrBadArchive, err)
	}
	cfgData, config, err := a.blobData(m.Config)
	if err != nil {
		return nil, err
	}
	cf, err := parseConfig(cfgData)
	if err != nil {
		return nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: the config has %d layers, the manifest %d", ErrBadArchive, len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	var layers []spooled
	for _, l := range m.Layers {
		sp, err := a.blob(l)
		if err != nil {
			return nil, err
		}
		layers = append(layers, sp)
	}
	return &pendingImage{manifest: manifest, config: config, cf: cf, layers: layers}, nil
}

// blob finds the blob of d under blobs/ and checks its digest and size.
func (a *archive) blob(d v1.Descriptor) (spooled, error) {
	h, err := parseDigest(d.Digest.String())
	if err != nil {
		return spooled{}, err
	}
	sp, err := a.file("blobs/" + h.Algorithm + "/" + h.Hex)
	if err != nil {
		return spooled{}, err
	}
	if sp.digest != h {
		return spooled{}, fmt.Errorf("%w: blob %s: its content hashes to %s", ErrBadArchive, h, sp.digest)
	}
	if d.Size != 0 && sp.size != d.Size {
		return spooled{}, fmt.Errorf("%w: blob %s: %d bytes, its descriptor says %d", ErrBadArchive, h, sp.size, d.Size)
	}
	return sp, nil
}

func (a *archive) blobData(d v1.Descriptor) ([]byte, spooled, error) {
	sp, err := a.blob(d)
	if err != nil {
		return nil, spooled{}, err
	}
	return a.read("blobs/" + sp.digest.Algorithm + "/" + sp.digest.Hex)
}
