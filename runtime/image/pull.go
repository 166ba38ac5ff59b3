package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PullOptions tune Pull.
type PullOptions struct {
	RegistryOptions
	// Platform is the platform taken from a multi-platform image
	// ("linux/arm64", "linux/arm/v7"); empty is linux/GOARCH. An image of
	// one platform is taken whatever its platform, as docker does.
	Platform string
	// Jobs bounds the layers downloaded at once (and unpacked at once);
	// 0 is 3, docker's max-concurrent-downloads.
	Jobs int
	// Progress, when set, receives the events of each layer (see
	// LayerEvent). Its calls are serialised; it should return quickly.
	Progress func(LayerEvent)
}

// defaultJobs is docker's max-concurrent-downloads and -uploads.
const defaultJobs = 3

// maxManifestSize bounds a manifest or index read into memory, as the
// distribution registry bounds what it accepts.
const maxManifestSize = 4 << 20

// Pull downloads ref ("redis", "redis:7", "ghcr.io/o/app@sha256:…") from
// its registry into the store, as docker normalises references, and returns
// it as Resolve would. A multi-platform index resolves to the wanted
// platform. A reference by tag tags the image; a reference by digest does
// not, but the image resolves by that digest afterwards (Image.Digests).
//
// Blobs the store has (by digest) are not downloaded again, nor are layers
// it has unpacked (by diff ID). The others download in parallel, each
// hashed as it streams into the operation's work folder and linked into the
// store only once verified, then unpacked there with Load's checks; only the
// final renames and the index write take the store lock. A failure or a
// cancelled ctx leaves the index as it was; the blobs verified so far stay
// for the next Pull to reuse (the next Remove deletes them if none does).
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (Image, error) {
	pr, err := parsePullRef(ref)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	img, err := s.pull(ctx, pr, opts)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", pr.display, err)
	}
	return img, nil
}

// pullRef is a reference to pull, normalised.
type pullRef struct {
	named reference.Named
	// display is the normalised reference, for messages.
	display string
	// tag is the normalised tag, empty when the reference has a digest.
	tag string
	// id is what the registry is asked for: the tag or the digest.
	id     string
	digest v1.Hash
}

func parsePullRef(ref string) (pullRef, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return pullRef{}, fmt.Errorf("reference %q: %w", ref, err)
	}
	pr := pullRef{named: named, display: named.String()}
	if digested, ok := named.(reference.Digested); ok {
		// As docker: a digest wins over a tag given with it.
		h, err := parseDigest(digested.Digest().String())
		if err != nil {
			return pullRef{}, fmt.Errorf("reference %q: %w", ref, err)
		}
		pr.digest, pr.id = h, h.String()
		return pr, nil
	}
	tagged := reference.TagNameOnly(named)
	pr.display, pr.tag = tagged.String(), tagged.String()
	pr.id = tagged.(reference.Tagged).Tag()
	return pr, nil
}

// repository is the go-containerregistry name of a normalised repository,
// insecure (plain HTTP tried after HTTPS) where opts allow it.
func repository(named reference.Named, opts RegistryOptions) (name.Repository, error) {
	var nopts []name.Option
	if opts.allowsHTTP(reference.Domain(named)) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.NewRepository(reference.TrimNamed(named).Name(), nopts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", reference.TrimNamed(named).Name(), err)
	}
	return r, nil
}

func (s *Store) pull(ctx context.Context, pr pullRef, opts PullOptions) (Image, error) {
	want := hostPlatform()
	if opts.Platform != "" {
		p, err := v1.ParsePlatform(opts.Platform)
		if err != nil {
			return Image{}, fmt.Errorf("platform %q: %w", opts.Platform, err)
		}
		want = *p
	}
	repo, err := repository(pr.named, opts.RegistryOptions)
	if err != nil {
		return Image{}, err
	}
	c, err := connect(ctx, opts.RegistryOptions, repo, transport.PullScope)
	if err != nil {
		return Image{}, err
	}
	defer c.close()

	p, err := c.resolve(ctx, pr, want, opts.Platform != "")
	if err != nil {
		return Image{}, err
	}
	return s.pullImage(ctx, c, p, opts)
}

// resolve fetches the manifest pr names, following indexes down to the
// image for want, and checks it. explicit says want was asked for: an image
// of one platform must then be of that one, as docker has it.
func (c *registryClient) resolve(ctx context.Context, pr pullRef, want v1.Platform, explicit bool) (pulled, error) {
	top, m, man, err := c.imageManifest(ctx, pr, want)
	if err != nil {
		return pulled{}, err
	}
	p := pulled{manifest: m, man: man, digests: []string{repoDigest(pr.named, top.String())}}
	if pr.tag != "" {
		p.tags = []string{pr.tag}
	} else {
		p.pinned = true
	}
	if explicit && top == m.digest {
		p.platform = &want
	}
	return p, nil
}

// imageManifest fetches the manifest pr names and, when it is an index, the
// manifest of the image for want. top is the digest of the first.
func (c *registryClient) imageManifest(ctx context.Context, pr pullRef, want v1.Platform) (top v1.Hash, m fetchedManifest, man *v1.Manifest, err error) {
	if m, err = c.manifest(ctx, pr.id, pr.digest); err != nil {
		return top, m, nil, err
	}
	top = m.digest
	for depth := 0; m.mediaType.IsIndex(); depth++ {
		if depth >= maxIndexDepth {
			return top, m, nil, fmt.Errorf("indexes nested deeper than %d", maxIndexDepth)
		}
		var idx v1.IndexManifest
		if err := json.Unmarshal(m.data, &idx); err != nil {
			return top, m, nil, fmt.Errorf("index %s: %w", m.digest, err)
		}
		child, err := choosePlatform(idx.Manifests, want)
		if err != nil {
			return top, m, nil, fmt.Errorf("index %s: %w", m.digest, err)
		}
		if _, err := parseDigest(child.Digest.String()); err != nil {
			return top, m, nil, fmt.Errorf("index %s: %w", m.digest, err)
		}
		if m, err = c.manifest(ctx, child.Digest.String(), child.Digest); err != nil {
			return top, m, nil, err
		}
	}
	man = &v1.Manifest{}
	if err := json.Unmarshal(m.data, man); err != nil {
		return top, m, nil, fmt.Errorf("manifest %s: %w", m.digest, err)
	}
	switch man.Config.MediaType {
	case types.DockerConfigJSON, types.OCIConfigJSON, "":
	default:
		return top, m, nil, fmt.Errorf("manifest %s: not a container image: its config is %s", m.digest, man.Config.MediaType)
	}
	for _, d := range append([]v1.Descriptor{man.Config}, man.Layers...) {
		if _, err := parseDigest(d.Digest.String()); err != nil {
			return top, m, nil, fmt.Errorf("manifest %s: %w", m.digest, err)
		}
		if d.Size <= 0 {
			return top, m, nil, fmt.Errorf("manifest %s: blob %s has no size", m.digest, d.Digest)
		}
	}
	return top, m, man, nil
}

// checkPlatform tells whether cf is an image for want.
func checkPlatform(cf *v1.ConfigFile, want v1.Platform) error {
	have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if have.OS != want.OS || have.Architecture != want.Architecture || (want.Variant != "" && have.Variant != want.Variant) {
		return fmt.Errorf("the image is for %s, not for %s", platformString(have), platformString(want))
	}
	return nil
}

// pulled is an image manifest fetched from a registry, and the names the
// image gets in the store.
type pulled struct {
	manifest fetchedManifest
	man      *v1.Manifest
	tags     []string
	digests  []string
	// pinned: the image is pulled by its digest, which then holds it as
	// a tag would (see index.Pinned).
	pinned bool
	// platform, when set, is the platform the image must be for.
	platform *v1.Platform
}

func (s *Store) pullImage(ctx context.Context, c *registryClient, p pulled, opts PullOptions) (Image, error) {
	rep := &reporter{fn: opts.Progress}
	if p.platform != nil {
		// The store's config, when it has the image; else the one pulled.
		if cf, err := s.readConfig(p.man.Config.Digest.String()); err == nil {
			if err := checkPlatform(cf, *p.platform); err != nil {
				return Image{}, err
			}
		}
	}
	// An image the store has: only its names change.
	img, ok, err := s.nameImage(p.man.Config.Digest.String(), p.tags, p.digests, p.pinned)
	if err != nil || ok {
		if ok {
			for _, l := range uniqueLayers(p.man.Layers) {
				rep.send(LayerEvent{Layer: l.Digest, State: LayerExists, Current: l.Size, Total: l.Size})
			}
		}
		return img, err
	}

	o, err := s.newOp()
	if err != nil {
		return Image{}, err
	}
	defer o.close()
	cfgData, config, err := s.pullConfig(ctx, c, o, p.man.Config)
	if err != nil {
		return Image{}, err
	}
	cf, err := parseConfig(cfgData)
	if err != nil {
		return Image{}, fmt.Errorf("config %s: %w", config.digest, err)
	}
	if p.platform != nil {
		if err := checkPlatform(cf, *p.platform); err != nil {
			return Image{}, err
		}
	}
	if len(cf.RootFS.DiffIDs) != len(p.man.Layers) {
		return Image{}, fmt.Errorf("manifest %s: %w: the config has %d layers, the manifest %d", p.manifest.digest, ErrBadArchive, len(cf.RootFS.DiffIDs), len(p.man.Layers))
	}
	manifest, err := spoolBytes(p.manifest.data, o.path("manifest"))
	if err != nil {
		return Image{}, fmt.Errorf("write manifest: %w", err)
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = defaultJobs
	}
	layers, prepared, err := s.pullLayers(ctx, c, o, p.man.Layers, cf.RootFS.DiffIDs, jobs, rep)
	if err != nil {
		return Image{}, err
	}
	pending := &pendingImage{tags: p.tags, digests: p.digests, pinned: p.pinned, manifest: manifest, config: config, cf: cf, layers: layers}
	imgs, err := s.commit(ctx, o, []*pendingImage{pending}, prepared)
	if err != nil {
		return Image{}, err
	}
	return imgs[0], nil
}

// nameImage points tags and repository digests at the image whose config
// digest is id, if the store has it (ok); pinned digests hold the image as
// tags do (index.Pinned).
func (s *Store) nameImage(id string, tags, digests []string, pinned bool) (img Image, ok bool, err error) {
	unlock, err := s.lock()
	if err != nil {
		return Image{}, false, err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, false, err
	}
	m, ok := idx.byID(id)
	if !ok {
		return Image{}, false, nil
	}
	changed := false
	for _, t := range tags {
		changed = changed || idx.Tags[t] != m
		idx.Tags[t] = m
	}
	for _, d := range digests {
		changed = changed || idx.Digests[d] != m || (pinned && !idx.Pinned[d])
		idx.Digests[d] = m
		if pinned {
			idx.Pinned[d] = true
		}
	}
	if changed {
		if err := s.writeIndex(idx); err != nil {
			return Image{}, false, err
		}
	}
	tag := ""
	if len(tags) > 0 {
		tag = tags[0]
	}
	img, err = s.image(idx, m, tag, nil)
	return img, true, err
}

// pullConfig reads the image config from the store or the registry, and
// spools it into the operation's folder.
func (s *Store) pullConfig(ctx context.Context, c *registryClient, o *op, d v1.Descriptor) ([]byte, spooled, error) {
	if d.Size > maxMetadataSize {
		return nil, spooled{}, fmt.Errorf("config %s: %d bytes is too large", d.Digest, d.Size)
	}
	if sp, ok := s.holdBlob(o.path("config"), d.Digest); ok && sp.size <= maxMetadataSize {
		data, err := os.ReadFile(sp.path)
		return data, sp, err
	}
	sp, err := s.fetchBlob(ctx, c, d, o.path("config"), nil)
	if err != nil {
		return nil, spooled{}, fmt.Errorf("config %s: %w", d.Digest, err)
	}
	data, err := os.ReadFile(sp.path)
	return data, sp, err
}

// fetchedManifest is a manifest or an index as a registry served it.
type fetchedManifest struct {
	data      []byte
	mediaType types.MediaType
	digest    v1.Hash
}

// manifestTypes are the manifests berth reads, in the Accept header.
var manifestTypes = []string{
	string(types.OCIImageIndex), string(types.DockerManifestList),
	string(types.OCIManifestSchema1), string(types.DockerManifestSchema2),
}

// manifest fetches the manifest or index id (a tag or a digest); a zero want
// is a tag's, whose content is trusted as the registry serves it.
func (c *registryClient) manifest(ctx context.Context, id string, want v1.Hash) (fetchedManifest, error) {
	resp, err := c.get(ctx, "manifests", id, manifestTypes...)
	if err != nil {
		return fetchedManifest{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return fetchedManifest{}, fmt.Errorf("manifest %s: %w", id, err)
	}
	if len(data) > maxManifestSize {
		return fetchedManifest{}, fmt.Errorf("manifest %s: larger than %d bytes", id, maxManifestSize)
	}
	digest := sha256Hash(sha256Sum(data))
	if want != (v1.Hash{}) && digest != want {
		return fetchedManifest{}, fmt.Errorf("manifest %s: %w: the registry sent content that hashes to %s (rejected)", want, ErrDigestMismatch, digest)
	}
	if h, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest")); err == nil && h.Algorithm == digest.Algorithm && h != digest {
		return fetchedManifest{}, fmt.Errorf("manifest %s: %w: the registry says %s, its content hashes to %s (rejected)", id, ErrDigestMismatch, h, digest)
	}
	mt, err := manifestKind(resp.Header, data)
	if err != nil {
		return fetchedManifest{}, fmt.Errorf("manifest %s: %w", id, err)
	}
	return fetchedManifest{data: data, mediaType: mt, digest: digest}, nil
}

// manifestKind tells an index from an image manifest, by the manifest's own
// mediaType, else the Content-Type, else its fields.
func manifestKind(h http.Header, data []byte) (types.MediaType, error) {
	var probe struct {
		SchemaVersion int
		MediaType     types.MediaType
		Manifests     json.RawMessage
		Config        json.RawMessage
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", err
	}
	mt := probe.MediaType
	if mt == "" {
		ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
		mt = types.MediaType(ct)
	}
	switch {
	case probe.SchemaVersion == 1 || mt.IsSchema1():
		return "", fmt.Errorf("docker schema 1 manifests are not supported: push the image again with a recent docker")
	case mt.IsIndex():
		return mt, nil
	case mt.IsImage():
		return mt, nil
	case probe.Manifests != nil && probe.Config == nil:
		return types.OCIImageIndex, nil
	case probe.Config != nil:
		return types.OCIManifestSchema1, nil
	}
	return "", fmt.Errorf("unsupported media type %q", mt)
}

// uniqueLayers is layers without repeated blobs, in order.
func uniqueLayers(layers []v1.Descriptor) []v1.Descriptor {
	seen := map[v1.Hash]bool{}
	var out []v1.Descriptor
	for _, l := range layers {
		if !seen[l.Digest] {
			seen[l.Digest] = true
			out = append(out, l)
		}
	}
	return out
}
