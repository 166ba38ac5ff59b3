package image

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	// klauspost's gzip reads twice as fast as the standard library's,
	// which was most of the time of an unpack.
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// compression is how a tarball is compressed, told by its first bytes.
type compression int

const (
	uncompressed compression = iota
	gzipped
	zstdCompressed
	bzip2Compressed
	xzCompressed
)

var magics = []struct {
	c     compression
	magic []byte
}{
	{gzipped, []byte{0x1f, 0x8b}},
	{zstdCompressed, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{xzCompressed, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
}

// bzip2Block follows "BZh" and the level digit: a file name starting with
// "BZh" must not pass for bzip2.
var bzip2Block = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}

func detect(head []byte) compression {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.c
		}
	}
	if len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' && bytes.Equal(head[4:10], bzip2Block) {
		return bzip2Compressed
	}
	return uncompressed
}

// magicLen is how many bytes detect needs.
const magicLen = 10

// layerMediaType is the OCI media type of a layer blob stored as it came.
func (c compression) layerMediaType() string {
	switch c {
	case gzipped:
		return "application/vnd.oci.image.layer.v1.tar+gzip"
	case zstdCompressed:
		return "application/vnd.oci.image.layer.v1.tar+zstd"
	case bzip2Compressed:
		// Not an OCI type, but what the blob is; berth reads it by its magic.
		return "application/vnd.oci.image.layer.v1.tar+bzip2"
	}
	return "application/vnd.oci.image.layer.v1.tar"
}

// decompress returns the tar stream inside r, detecting the compression by
// its magic bytes. Closing it does not close r.
func decompress(r io.Reader) (io.ReadCloser, compression, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, err := br.Peek(magicLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	c := detect(head)
	switch c {
	case gzipped:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("%w: gzip: %w", ErrBadArchive, err)
		}
		return zr, c, nil
	case zstdCompressed:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, c, fmt.Errorf("%w: zstd: %w", ErrBadArchive, err)
		}
		return zr.IOReadCloser(), c, nil
	case bzip2Compressed:
		return io.NopCloser(bzip2.NewReader(br)), c, nil
	case xzCompressed:
		return nil, c, fmt.Errorf("%w: xz compression is not supported: decompress it first (xz -d)", ErrBadArchive)
	}
	return io.NopCloser(br), c, nil
}

// fileCompression reads the first bytes of the file at p.
func fileCompression(p string) (compression, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, magicLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return detect(head[:n]), nil
}

// spooled is a file in an operation's folder with its digest.
type spooled struct {
	path   string
	digest v1.Hash
	size   int64
}

// spool copies r into a new file at p, hashing it on the way.
func spool(ctx context.Context, r io.Reader, p string) (sp spooled, err error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return spooled{}, err
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
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return spooled{}, err
	}
	return spooled{path: p, digest: sha256Hash(h.Sum(nil)), size: n}, nil
}

// spoolBytes writes data (a config or manifest berth made) as a spooled file.
func spoolBytes(data []byte, p string) (spooled, error) {
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return spooled{}, err
	}
	return spooled{path: p, digest: sha256Hash(sha256Sum(data)), size: int64(len(data))}, nil
}

func sha256Sum(data []byte) []byte {
	sum := sha256.Sum256(data)
	return sum[:]
}

func sha256Hash(sum []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum)}
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// parseDigest checks a digest that will name a file in the store.
func parseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%w: digest %q: %w", ErrBadArchive, s, err)
	}
	if h.Algorithm != "sha256" {
		return v1.Hash{}, fmt.Errorf("%w: digest %q: only sha256 is supported", ErrBadArchive, s)
	}
	return h, nil
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, blobsDir, h.Hex)
}

func (s *Store) layerPath(diffID v1.Hash) string {
	return filepath.Join(s.dir, layersDir, diffID.Hex)
}

// readBlob reads a (small) blob of the store.
func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	data, err := os.ReadFile(s.blobPath(h))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return data, nil
}

// placeBlob moves a spooled file to its final name in blobs/, unless the
// store has that blob already. It returns whether it created the blob.
// Callers hold the store lock.
func (s *Store) placeBlob(sp spooled) (bool, error) {
	final := s.blobPath(sp.digest)
	if _, err := os.Lstat(final); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("store blob %s: %w", sp.digest, err)
	}
	// The blob must be on disk before the index names it.
	f, err := os.Open(sp.path)
	if err != nil {
		return false, fmt.Errorf("store blob %s: %w", sp.digest, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return false, fmt.Errorf("store blob %s: fsync: %w", sp.digest, err)
	}
	if err := os.Rename(sp.path, final); err != nil {
		return false, fmt.Errorf("store blob %s: %w", sp.digest, err)
	}
	return true, nil
}
