package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// layerTask is one distinct layer blob of a manifest to pull.
type layerTask struct {
	desc   v1.Descriptor
	diffID v1.Hash
	// blob is the blob the image will use for the layer: one the store
	// has, held in the work folder, or the downloaded one.
	blob spooled
	// download and unpack say what is left to do.
	download, unpack bool
	// dst and layerDir are the task's paths in the work folder.
	dst, layerDir string
}

// pullLayers gets the blobs of layers (one per diffIDs entry) into the work
// folder, and unpacks there the layers the store lacks. It returns the blob
// of each layer, in order, and the unpacked layers by diff ID, as commit
// takes them.
func (s *Store) pullLayers(ctx context.Context, c *registryClient, o *op, layers []v1.Descriptor, diffIDs []v1.Hash, jobs int, rep *reporter) ([]spooled, map[v1.Hash]unpackedLayer, error) {
	tasks, order, err := s.planLayers(o, layers, diffIDs)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range tasks {
		ev := LayerEvent{Layer: t.desc.Digest, State: LayerWaiting, Total: t.desc.Size}
		if !t.download && !t.unpack {
			ev.State, ev.Current = LayerExists, t.desc.Size
		}
		rep.send(ev)
	}

	prepared := map[v1.Hash]unpackedLayer{}
	var mu sync.Mutex
	downloads := semaphore.NewWeighted(int64(jobs))
	unpacks := semaphore.NewWeighted(int64(jobs))
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range tasks {
		if !t.download && !t.unpack {
			continue
		}
		g.Go(func() error {
			if t.download {
				if err := downloads.Acquire(gctx, 1); err != nil {
					return err
				}
				sp, err := s.fetchBlob(gctx, c, t.desc, t.dst, rep)
				downloads.Release(1)
				if err != nil {
					return fmt.Errorf("layer %s: %w", t.desc.Digest, err)
				}
				t.blob = sp
				rep.send(LayerEvent{Layer: t.desc.Digest, State: LayerDownloaded, Current: sp.size, Total: t.desc.Size})
			}
			if t.unpack {
				if err := unpacks.Acquire(gctx, 1); err != nil {
					return err
				}
				rep.send(LayerEvent{Layer: t.desc.Digest, State: LayerExtracting, Current: t.desc.Size, Total: t.desc.Size})
				l, err := unpackBlob(gctx, t.blob.path, t.layerDir, t.diffID, t.desc.Digest)
				unpacks.Release(1)
				if err != nil {
					return err
				}
				mu.Lock()
				prepared[t.diffID] = l
				mu.Unlock()
			}
			rep.send(LayerEvent{Layer: t.desc.Digest, State: LayerDone, Current: t.desc.Size, Total: t.desc.Size})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	blobs := make([]spooled, len(order))
	for i, t := range order {
		blobs[i] = t.blob
	}
	return blobs, prepared, nil
}

// planLayers decides, for each distinct blob of layers, whether to download
// it and whether to unpack it, and holds the blobs the store has. order is
// the task of each layer.
func (s *Store) planLayers(o *op, layers []v1.Descriptor, diffIDs []v1.Hash) (tasks, order []*layerTask, err error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, nil, err
	}
	byBlob := map[v1.Hash]*layerTask{}
	unpacking := map[v1.Hash]bool{}
	for i, l := range layers {
		d := diffIDs[i]
		if t, ok := byBlob[l.Digest]; ok {
			if t.diffID != d {
				return nil, nil, fmt.Errorf("%w: layer %s is listed twice, with the diff IDs %s and %s", ErrBadArchive, l.Digest, t.diffID, d)
			}
			order = append(order, t)
			continue
		}
		t := &layerTask{desc: l, diffID: d, dst: o.path("blob"), layerDir: o.path("layer")}
		t.unpack = !s.hasLayer(idx, d) && !unpacking[d]
		unpacking[d] = unpacking[d] || t.unpack
		if sp, ok := s.holdBlob(o.path("held"), l.Digest); ok {
			t.blob = sp
		} else if b, ok := idx.blobOf(d.String()); ok && !t.unpack && s.holdStored(o, b, t) {
			// The layer is unpacked, from a blob compressed otherwise:
			// the image uses that blob (Push makes its manifest agree).
		} else {
			t.download = true
		}
		byBlob[l.Digest] = t
		tasks = append(tasks, t)
		order = append(order, t)
	}
	return tasks, order, nil
}

// holdStored holds the store's blob b for t.
func (s *Store) holdStored(o *op, b string, t *layerTask) bool {
	h, err := parseDigest(b)
	if err != nil {
		return false
	}
	sp, ok := s.holdBlob(o.path("held"), h)
	if ok {
		t.blob = sp
	}
	return ok
}

// holdBlob hard-links the store's blob h to p, in a work folder, so that a
// Remove running meanwhile cannot take it away before commit (which puts it
// back from p if it must). ok is false when the store does not have it.
func (s *Store) holdBlob(p string, h v1.Hash) (spooled, bool) {
	if err := os.Link(s.blobPath(h), p); err != nil {
		return spooled{}, false
	}
	fi, err := os.Stat(p)
	if err != nil {
		return spooled{}, false
	}
	return spooled{path: p, digest: h, size: fi.Size()}, true
}

// fetchBlob downloads the blob d to the new file dst, hashing it as it
// streams and reading no more than its size. Only a blob of the right digest
// and size is kept: it is then linked into blobs/ at once, where the next
// pull finds it should this one be interrupted. rep, when not nil, is told
// of the progress.
func (s *Store) fetchBlob(ctx context.Context, c *registryClient, d v1.Descriptor, dst string, rep *reporter) (spooled, error) {
	resp, err := c.get(ctx, "blobs", d.Digest.String())
	if err != nil {
		return spooled{}, err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, d.Size+1)
	if rep != nil {
		body = &progressReader{r: body, rep: rep, ev: LayerEvent{Layer: d.Digest, State: LayerDownloading, Total: d.Size}}
	}
	in := &errReader{r: body}
	sp, err := spool(ctx, in, dst)
	switch {
	case ctx.Err() != nil:
		return spooled{}, ctx.Err()
	case in.err != nil:
		return spooled{}, fmt.Errorf("download: %w", in.err)
	case err != nil:
		return spooled{}, fmt.Errorf("download: %w", err)
	}
	if rep != nil {
		rep.send(LayerEvent{Layer: d.Digest, State: LayerVerifying, Current: sp.size, Total: d.Size})
	}
	if sp.size != d.Size {
		os.Remove(sp.path)
		what := "fewer"
		if sp.size > d.Size {
			what = "more"
		}
		return spooled{}, fmt.Errorf("%w: the registry sent %s bytes than the %d of the manifest (rejected)", ErrDigestMismatch, what, d.Size)
	}
	if sp.digest != d.Digest {
		os.Remove(sp.path)
		return spooled{}, fmt.Errorf("%w: the registry sent content that hashes to %s (rejected)", ErrDigestMismatch, sp.digest)
	}
	if err := s.linkBlob(sp); err != nil {
		return spooled{}, err
	}
	return sp, nil
}

// linkBlob gives a verified blob its name in blobs/ (keeping its name in
// the work folder), unless the store has it already. No lock is needed: the
// blob is complete and right under either name, and until an index names it
// the image in the making holds it through its work folder.
func (s *Store) linkBlob(sp spooled) error {
	f, err := os.Open(sp.path)
	if err != nil {
		return fmt.Errorf("store blob %s: %w", sp.digest, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("store blob %s: fsync: %w", sp.digest, err)
	}
	if err := os.Link(sp.path, s.blobPath(sp.digest)); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store blob %s: %w", sp.digest, err)
	}
	return nil
}
