package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzUnpack unpacks arbitrary bytes as a layer (a tar, plain or
// compressed) into a folder of a temporary tree, and checks after each
// input that nothing of the tree outside that folder was written, linked,
// removed or changed: not the sentinel file beside it, nor the folder and
// the symlink to it that sit there as targets for escapes through ".."
// names, symlinks and hard links. It must not panic either. The seeds are
// in testdata/fuzz/FuzzUnpack: layers of every entry type, escape attempts
// of each kind the extractor refuses, whiteouts, replaced entries, and
// their gzip and zstd forms.
func FuzzUnpack(f *testing.F) {
	// The tree is made once per fuzzing process and checked after each
	// input: an input that changes it fails there and then.
	parent := escapeTargets(f)
	work := filepath.Join(parent, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		f.Fatal(err)
	}
	before := tree(f, parent, "work")
	f.Fuzz(func(t *testing.T, data []byte) {
		if tooLarge(data, false) {
			t.Skip("expands past the fuzzing bounds")
		}
		blob := filepath.Join(work, "blob")
		if err := os.WriteFile(blob, data, 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(work, "layer")
		defer removeTree(dst)
		_, err := unpackBlob(context.Background(), blob, dst, v1.Hash{}, sha256Hash(sha256Sum(data)))
		if err != nil && exists(dst) {
			t.Errorf("a failed unpack left %s: %v", dst, err)
		}
		sameTree(t, before, tree(t, parent, "work"))
	})
}

// escapeTargets makes the tree around the folder under test: a sentinel
// file, a folder "outside" with a file, and a symlink to that folder, then
// returns its root.
func escapeTargets(t testing.TB) string {
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "sentinel"), []byte("sentinel"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "file"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(parent, "link")); err != nil {
		t.Fatal(err)
	}
	return parent
}

// tree describes every path under root except the top-level entry skip: its
// type and mode, size, owner, link count, change and modification times,
// and content or link target. A write, a new hard link, a chmod, chown or
// setxattr (they change ctime) or a new or removed entry all show.
func tree(t testing.TB, root, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == skip {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v size=%d owner=%d:%d nlink=%d ctime=%d.%d mtime=%d.%d",
			fi.Mode(), fi.Size(), st.Uid, st.Gid, st.Nlink, st.Ctim.Sec, st.Ctim.Nsec, st.Mtim.Sec, st.Mtim.Nsec)
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(data))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, was := range before {
		if now, ok := after[p]; !ok {
			t.Errorf("outside the target: %s was removed", p)
		} else if now != was {
			t.Errorf("outside the target: %s changed:\n  was %s\n  now %s", p, was, now)
		}
	}
	for p, now := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("outside the target: %s was written: %s", p, now)
		}
	}
}

// removeTree removes dir and all in it, whatever modes a layer gave its
// folders: each gets its owner's rwx first.
func removeTree(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

// Fuzzing bounds: a small input may stand for a huge one (a compression
// bomb, or a sparse file whose holes the tar reader fills with zeros, as
// docker's extraction does too). Those only fill the disk of the machine
// that fuzzes: they are skipped, not unpacked.
const (
	maxFuzzStream = 64 << 20 // decompressed bytes
	maxFuzzFiles  = 16 << 20 // sum of the sizes the tar headers declare
)

// tooLarge reports whether data, decompressed, or the tar inside it would
// pass the fuzzing bounds; nested also looks into each file of the tar as a
// tarball of its own (the layers of an image archive).
func tooLarge(data []byte, nested bool) bool {
	stream := data
	if detect(data) != uncompressed {
		r, _, err := decompress(bytes.NewReader(data))
		if err != nil {
			return false
		}
		defer r.Close()
		stream, err = io.ReadAll(io.LimitReader(r, maxFuzzStream+1))
		if len(stream) > maxFuzzStream {
			return true
		}
		if err != nil {
			return false
		}
	}
	tr := tar.NewReader(bytes.NewReader(stream))
	var total int64
	for {
		hdr, err := tr.Next()
		if err != nil {
			return false // the end, or what the code under test will refuse
		}
		if hdr.Size < 0 || hdr.Size > maxFuzzFiles-total {
			return true
		}
		total += hdr.Size
		if nested && (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse) {
			body, err := io.ReadAll(tr)
			if err != nil {
				return false
			}
			if tooLarge(body, false) {
				return true
			}
		}
	}
}
