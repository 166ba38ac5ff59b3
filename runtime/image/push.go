package image

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushOptions tune Push.
type PushOptions struct {
	RegistryOptions
	// Jobs bounds the layers uploaded at once; 0 is 3, as docker.
	Jobs int
	// Progress, when set, receives the events of each layer: Waiting,
	// Pushing, then Pushed or Already exists. Its calls are serialised.
	Progress func(LayerEvent)
}

// Pushed is what Push sent.
type Pushed struct {
	// Ref is the normalised tag pushed.
	Ref string
	// Digest and Size are the manifest's, as `docker push` prints them
	// ("latest: digest: sha256:… size: 1234").
	Digest v1.Hash
	Size   int64
}

// Push uploads the image tagged ref ("localhost:5000/app:1") to the
// registry its name gives, as `docker push`: the config and layer blobs the
// registry lacks, then the manifest under the tag. The image's repository
// digest is recorded in the store (Image.Digests).
//
// The blobs go as the store keeps them, but for layers that are not
// compressed (or compressed with bzip2, which registries do not know),
// which go gzip-compressed, as docker pushes them; the manifest then pushed
// is a new OCI manifest of the same config, so of the same diff IDs and
// image ID.
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions) (Pushed, error) {
	tag, err := normaliseTag(ref)
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", ref, err)
	}
	p, err := s.push(ctx, tag, opts)
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", tag, err)
	}
	return p, nil
}

func (s *Store) push(ctx context.Context, tag string, opts PushOptions) (Pushed, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Pushed{}, err
	}
	m, ok := idx.Tags[tag]
	rec := idx.Images[m]
	if !ok || rec == nil {
		return Pushed{}, fmt.Errorf("%w: %s: tag the image first (berth image tag)", ErrNotFound, familiarString(tag))
	}
	o, err := s.newOp()
	if err != nil {
		return Pushed{}, err
	}
	defer o.close()
	img, err := s.pushable(ctx, o, m, rec)
	if err != nil {
		return Pushed{}, err
	}

	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return Pushed{}, err
	}
	repo, err := repository(named, opts.RegistryOptions)
	if err != nil {
		return Pushed{}, err
	}
	c, err := connect(ctx, opts.RegistryOptions, repo, transport.PushScope)
	if err != nil {
		return Pushed{}, err
	}
	defer c.close()
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = defaultJobs
	}
	rep := &reporter{fn: opts.Progress}
	layers := img.uniqueLayers()
	for _, l := range layers {
		l.rep = rep
		rep.send(LayerEvent{Layer: l.digest, State: LayerWaiting, Total: l.size})
	}
	v1img, err := partial.CompressedToImage(img)
	if err != nil {
		return Pushed{}, err
	}
	err = remote.Write(repo.Tag(named.(reference.Tagged).Tag()), v1img,
		remote.WithContext(ctx), remote.WithTransport(c.client.Transport), remote.WithJobs(jobs))
	if err != nil {
		return Pushed{}, c.explain(err)
	}
	for _, l := range layers {
		ev := LayerEvent{Layer: l.digest, State: LayerPushed, Current: l.size, Total: l.size}
		if !l.opened.Load() {
			ev.State = LayerExists
		}
		rep.send(ev)
	}

	digest := sha256Hash(sha256Sum(img.manifest))
	if _, _, err := s.nameImage(rec.ID, nil, []string{repoDigest(named, digest.String())}, false); err != nil {
		return Pushed{}, fmt.Errorf("pushed %s, but recording its digest: %w", digest, err)
	}
	return Pushed{Ref: tag, Digest: digest, Size: int64(len(img.manifest))}, nil
}

// pushImage is an image of the store as go-containerregistry's
// partial.CompressedImageCore: its blobs are files held in a work folder.
type pushImage struct {
	config    []byte
	manifest  []byte
	mediaType types.MediaType
	layers    []*pushLayer
}

// uniqueLayers is the image's layers without repeated blobs, in order.
func (p *pushImage) uniqueLayers() []*pushLayer {
	seen := map[v1.Hash]bool{}
	var out []*pushLayer
	for _, l := range p.layers {
		if !seen[l.digest] {
			seen[l.digest] = true
			out = append(out, l)
		}
	}
	return out
}

type pushLayer struct {
	spooled
	mediaType types.MediaType
	rep       *reporter
	opened    atomic.Bool
}

// pushable holds the blobs of the image m and makes the manifest to push.
func (s *Store) pushable(ctx context.Context, o *op, m string, rec *imageRecord) (*pushImage, error) {
	hold := func(digest string) (spooled, error) {
		h, err := parseDigest(digest)
		if err != nil {
			return spooled{}, err
		}
		sp, ok := s.holdBlob(o.path("held"), h)
		if !ok {
			return spooled{}, fmt.Errorf("blob %s is missing from the store: pull or load the image again", h)
		}
		return sp, nil
	}
	msp, err := hold(m)
	if err != nil {
		return nil, err
	}
	csp, err := hold(rec.ID)
	if err != nil {
		return nil, err
	}
	img := &pushImage{}
	if img.manifest, err = os.ReadFile(msp.path); err != nil {
		return nil, err
	}
	if img.config, err = os.ReadFile(csp.path); err != nil {
		return nil, err
	}
	var man v1.Manifest
	if err := json.Unmarshal(img.manifest, &man); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m, err)
	}
	if img.mediaType, err = manifestKind(http.Header{}, img.manifest); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m, err)
	}
	// The stored manifest goes as it is when it names the blobs the store
	// keeps, as they are.
	same := len(man.Layers) == len(rec.Blobs) && man.Config.Digest.String() == rec.ID
	for i, b := range rec.Blobs {
		sp, err := hold(b)
		if err != nil {
			return nil, err
		}
		comp, err := fileCompression(sp.path)
		if err != nil {
			return nil, err
		}
		if comp == uncompressed || comp == bzip2Compressed {
			if sp, err = gzipBlob(ctx, sp, o.path("gzip")); err != nil {
				return nil, fmt.Errorf("layer %s: compress: %w", b, err)
			}
			comp = gzipped
		}
		l := &pushLayer{spooled: sp, mediaType: types.MediaType(comp.layerMediaType())}
		if same && man.Layers[i].Digest == sp.digest {
			l.mediaType = man.Layers[i].MediaType
		} else {
			same = false
		}
		img.layers = append(img.layers, l)
	}
	if same {
		return img, nil
	}
	out := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: csp.size, Digest: csp.digest},
		Layers:        []v1.Descriptor{},
		Annotations:   man.Annotations,
	}
	for _, l := range img.layers {
		out.Layers = append(out.Layers, v1.Descriptor{MediaType: l.mediaType, Size: l.size, Digest: l.digest})
	}
	if img.manifest, err = json.Marshal(out); err != nil {
		return nil, err
	}
	img.mediaType = types.OCIManifestSchema1
	return img, nil
}

// gzipBlob writes the tar stream of the layer blob sp gzip-compressed to
// the new file dst. The output depends only on the tar stream (no name, no
// time in the gzip header), so pushing the same layer twice sends the same
// blob.
func gzipBlob(ctx context.Context, sp spooled, dst string) (_ spooled, err error) {
	in, err := os.Open(sp.path)
	if err != nil {
		return spooled{}, err
	}
	defer in.Close()
	tarStream, _, err := decompress(in)
	if err != nil {
		return spooled{}, err
	}
	defer tarStream.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return spooled{}, err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	h := sha256.New()
	counter := &countWriter{}
	zw := gzip.NewWriter(io.MultiWriter(out, h, counter))
	if _, err := io.Copy(zw, ctxReader{ctx, tarStream}); err != nil {
		return spooled{}, err
	}
	if err := zw.Close(); err != nil {
		return spooled{}, err
	}
	return spooled{path: dst, digest: sha256Hash(h.Sum(nil)), size: counter.n}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

var _ partial.CompressedImageCore = (*pushImage)(nil)

func (p *pushImage) RawConfigFile() ([]byte, error)      { return p.config, nil }
func (p *pushImage) MediaType() (types.MediaType, error) { return p.mediaType, nil }
func (p *pushImage) RawManifest() ([]byte, error)        { return p.manifest, nil }

func (p *pushImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range p.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not a layer of the image", h)
}

func (l *pushLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *pushLayer) Size() (int64, error)                { return l.size, nil }
func (l *pushLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l *pushLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	l.opened.Store(true)
	pr := &progressReader{r: f, rep: l.rep, ev: LayerEvent{Layer: l.digest, State: LayerPushing, Total: l.size}}
	return struct {
		io.Reader
		io.Closer
	}{pr, f}, nil
}

// Tag gives the image src (a reference, an ID or an ID prefix, as Resolve
// takes them) the tag dst ("app:1", "localhost:5000/app"), as `docker tag`.
// A tag that named another image moves.
func (s *Store) Tag(src, dst string) error {
	if err := s.tag(src, dst); err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	return nil
}

func (s *Store) tag(src, dst string) error {
	t, err := normaliseTag(dst)
	if err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	m, err := idx.resolve(src)
	if err != nil {
		return err
	}
	idx.Tags[t] = m.manifest
	return s.writeIndex(idx)
}
