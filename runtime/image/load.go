package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Load reads a `docker save` tarball or an OCI image archive and stores every
// image in it under the tags it carries. It returns the images loaded: one
// per tag, and one with an empty Ref for an image of no tag.
//
// The archive (plain or compressed) is read once, each file of it spooled
// with its digest into a work folder of the store; layers are unpacked there
// too, and only then, under the store lock, renamed into place. A failure at
// any point leaves nothing in the store.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Image, error) {
	imgs, err := s.load(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("load images: %w", err)
	}
	return imgs, nil
}

func (s *Store) load(ctx context.Context, r io.Reader) ([]Image, error) {
	o, err := s.newOp()
	if err != nil {
		return nil, err
	}
	defer o.close()
	arc, err := readArchive(ctx, r, o)
	if err != nil {
		return nil, err
	}
	var pending []*pendingImage
	switch {
	case arc.has(dockerManifestFile):
		pending, err = arc.dockerImages(o)
	case arc.has(ociIndexFile):
		pending, err = arc.ociImages()
	default:
		return nil, fmt.Errorf("%w: neither a docker save tarball (no manifest.json) nor an OCI image archive (no index.json)", ErrBadArchive)
	}
	if err != nil {
		return nil, err
	}
	prepared, err := s.prepareLayers(ctx, o, pending)
	if err != nil {
		return nil, err
	}
	return s.commit(ctx, o, pending, prepared)
}

// archive is an image archive spooled into an operation's folder: its
// regular files by name, each with its digest, and its links.
type archive struct {
	files map[string]spooled
	// links maps the names of symlinks and hard links to the names they
	// point at (old docker saves link layer.tar files of shared layers).
	links map[string]string
}

// readArchive spools every regular file of the archive r.
func readArchive(ctx context.Context, r io.Reader, o *op) (*archive, error) {
	stream, _, err := decompress(ctxReader{ctx, r})
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	defer stream.Close()
	arc := &archive{files: map[string]spooled{}, links: map[string]string{}}
	byDigest := map[v1.Hash]spooled{}
	tr := tar.NewReader(stream)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: read archive: %w", ErrBadArchive, err)
		}
		// Names are only keys here: nothing is written under them.
		name := archiveName(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeGNUSparse:
			in := &errReader{r: tr}
			sp, err := spool(ctx, in, o.path("blob"))
			if in.err != nil {
				return nil, fmt.Errorf("%w: read archive: %s: %w", ErrBadArchive, hdr.Name, in.err)
			} else if err != nil {
				return nil, fmt.Errorf("read archive: %s: %w", hdr.Name, err)
			}
			if have, ok := byDigest[sp.digest]; ok {
				os.Remove(sp.path)
				sp = have
			}
			byDigest[sp.digest] = sp
			arc.files[name] = sp
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			arc.links[name] = archiveName(target)
		case tar.TypeLink:
			arc.links[name] = archiveName(hdr.Linkname)
		}
	}
	// Drain, so that a compressed archive's checksum is verified.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return nil, fmt.Errorf("%w: read archive: %w", ErrBadArchive, err)
	}
	return arc, nil
}

func archiveName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *archive) has(name string) bool {
	_, err := a.file(name)
	return err == nil
}

// file returns the spooled file of name, following links.
func (a *archive) file(name string) (spooled, error) {
	n := archiveName(name)
	for range 16 {
		if sp, ok := a.files[n]; ok {
			return sp, nil
		}
		target, ok := a.links[n]
		if !ok {
			break
		}
		n = target
	}
	return spooled{}, fmt.Errorf("%w: %s is not in the archive", ErrBadArchive, name)
}

// read returns the content of a small file of the archive (a manifest, an
// index, a config).
func (a *archive) read(name string) ([]byte, spooled, error) {
	sp, err := a.file(name)
	if err != nil {
		return nil, spooled{}, err
	}
	if sp.size > maxMetadataSize {
		return nil, spooled{}, fmt.Errorf("%w: %s: %d bytes is too large for metadata", ErrBadArchive, name, sp.size)
	}
	data, err := os.ReadFile(sp.path)
	if err != nil {
		return nil, spooled{}, fmt.Errorf("read %s: %w", name, err)
	}
	return data, sp, nil
}

// maxMetadataSize bounds the JSON files berth reads into memory.
const maxMetadataSize = 64 << 20

// errReader tells the errors of its reader (a corrupt archive) from those of
// the writer it is copied to (a full disk).
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}
