package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// entry is one file of a tarball made by a test.
type entry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	gid  int
	pax  map[string]string
	dev  [2]int64
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: to, mode: 0o777}
}
func hardlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeLink, link: to, mode: 0o644}
}

var testTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// makeTar writes entries as a tarball, in order.
func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, Size: int64(len(e.body)), ModTime: testTime,
			PAXRecords: e.pax, Devmajor: e.dev[0], Devminor: e.dev[1],
			Format: tar.FormatPAX,
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(data, nil)
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func importBytes(t testing.TB, s *Store, data []byte, ref string, changes ...string) Image {
	t.Helper()
	img, err := s.Import(context.Background(), bytes.NewReader(data), ref, ImportOptions{Changes: changes})
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	return img
}

// storeFiles lists every path under the store, except the lock file, as
// "blobs/sha256/…", "layers/…/" (top level only), "tmp/…".
func storeFiles(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{blobsDir, layersDir, tmpDir} {
		entries, err := os.ReadDir(filepath.Join(s.dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func layerCount(t testing.TB, s *Store) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.dir, layersDir))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func readLayerFile(t testing.TB, dir, name string) string {
	t.Helper()
	data, err := fs.ReadFile(os.DirFS(dir), name)
	if err != nil {
		t.Fatalf("read %s in layer: %v", name, err)
	}
	return string(data)
}
