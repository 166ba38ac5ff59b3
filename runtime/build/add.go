package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// ADD extracts a local tarball (plain, gzip, bzip2 or zstd) into its
// destination, and downloads a URL as a file.

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// tarStream returns the uncompressed content of r, told by its first bytes.
func tarStream(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(head, bzip2Magic):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, xzMagic):
		return nil, errors.New("xz archives are not supported by berth: decompress it first (xz -d), or use COPY")
	}
	return io.NopCloser(br), nil
}

// isArchive tells whether the file n is a tarball, perhaps compressed:
// its first block is a tar header ("ustar" magic), as docker tells.
func isArchive(v *fsView, n *node) (bool, error) {
	f, err := v.open(n)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r, err := tarStream(f)
	if err != nil {
		if strings.Contains(err.Error(), "xz") {
			return false, err
		}
		return false, nil
	}
	defer r.Close()
	block := make([]byte, 512)
	if _, err := io.ReadFull(r, block); err != nil {
		return false, nil
	}
	return bytes.Equal(block[257:262], []byte("ustar")), nil
}

// extract unpacks the tarball s into the directory dst of the image.
func (c *copier) extract(s copySource, dst string) error {
	f, err := s.view.open(s.node)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := tarStream(f)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := c.diff.mkdirAll(dst, nil); err != nil {
		return err
	}
	tr := tar.NewReader(ctxReader{c.ctx, r})
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := c.extractEntry(tr, hdr, dst); err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
}

func (c *copier) extractEntry(tr *tar.Reader, hdr *tar.Header, dst string) error {
	if c := path.Clean(hdr.Name); c == ".." || strings.HasPrefix(c, "../") {
		return errors.New("the path leads out of the destination")
	}
	name := path.Clean("/" + hdr.Name)
	if name == "/" {
		return nil
	}
	m := meta{uid: hdr.Uid, gid: hdr.Gid, mode: uint32(hdr.Mode) & 0o7777, mtime: hdr.ModTime}
	if c.owner != nil {
		m.uid, m.gid = c.owner.uid, c.owner.gid
	}
	parent, err := c.realPath(path.Join(dst, path.Dir(name)), true)
	if err != nil {
		return err
	}
	target := path.Join(parent, path.Base(name))
	switch hdr.Typeflag {
	case tar.TypeDir:
		return c.diff.mkdirAll(target, &m)
	case tar.TypeReg, tar.TypeGNUSparse:
		return c.diff.writeFile(target, tr, m)
	case tar.TypeSymlink:
		return c.diff.symlink(target, hdr.Linkname, m)
	case tar.TypeLink:
		link := path.Clean("/" + hdr.Linkname)
		lp, err := c.realPath(path.Join(dst, path.Dir(link)), true)
		if err != nil {
			return err
		}
		return c.diff.hardlink(target, path.Join(lp, path.Base(link)))
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		return c.diff.mknod(target, mode, unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)), m)
	}
	// PAX globals, and what has no meaning in a layer.
	return nil
}

// download is a file that ADD fetched from a URL, in the build's work
// folder.
type download struct {
	path   string
	name   string
	digest string
	mtime  time.Time
}

// download fetches url, checked against checksum ("sha256:…") when given.
// As docker, it is fetched at every build: its content is what the cache
// key names.
func (b *builder) download(ctx context.Context, rawURL, checksum string, v *vertex) (*download, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: ADD %s: %w", ErrDockerfile, rawURL, err)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "download"
	}
	work, err := b.workDir()
	if err != nil {
		return nil, err
	}
	v.note("downloading %s", rawURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: ADD %s: the server answered %s", ErrSourceNotFound, rawURL, resp.Status)
	}
	p := work.Path("download")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if checksum != "" && checksum != digest {
		return nil, fmt.Errorf("ADD %s: the content's digest is %s, not the --checksum %s", rawURL, digest, checksum)
	}
	d := &download{path: p, name: name, digest: digest, mtime: time.Unix(0, 0)}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		d.mtime = t
	}
	return d, nil
}

// copyDownload writes a downloaded file, 0600 as docker makes it.
func (c *copier) copyDownload(d *download, dst string) error {
	m := meta{mode: 0o600, mtime: d.mtime}
	if c.owner != nil {
		m.uid, m.gid = c.owner.uid, c.owner.gid
	}
	if c.chmod != nil {
		m.mode = *c.chmod
	}
	f, err := os.Open(d.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.diff.writeFile(dst, ctxReader{c.ctx, f}, m)
}
