package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// unpackTar unpacks data into a new folder with the store's code.
func unpackTar(t testing.TB, data []byte) (string, error) {
	t.Helper()
	work := t.TempDir()
	blob := filepath.Join(work, "blob")
	if err := os.WriteFile(blob, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(work, "layer")
	_, err := unpackBlob(context.Background(), blob, dst, v1.Hash{}, sha256Hash(sha256Sum(data)))
	return dst, err
}

func TestUnpackWhiteouts(t *testing.T) {
	imagetest.NeedRoot(t)
	dst, err := unpackTar(t, makeTar(t,
		dir("etc/"),
		file(".wh.removed", ""),
		file("etc/.wh.passwd", ""),
		dir("opq/"),
		file("opq/.wh..wh..opq", ""),
		file("opq/new", "new"),
		file(".wh..wh.plnk", ""),
		// A whiteout in a directory the tarball does not list.
		file("implicit/.wh.gone", ""),
	))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"removed", "etc/passwd", "implicit/gone"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dst, name), &st); err != nil {
			t.Errorf("whiteout %s: %v", name, err)
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("whiteout %s: mode %o rdev %d, want a 0/0 character device", name, st.Mode, st.Rdev)
		}
	}
	buf := make([]byte, 8)
	n, err := unix.Getxattr(filepath.Join(dst, "opq"), opaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opq: %s = %q, %v", opaqueXattr, buf[:n], err)
	}
	if n, err := unix.Getxattr(filepath.Join(dst, "etc"), opaqueXattr, buf); err == nil {
		t.Errorf("etc is opaque too: %q", buf[:n])
	}
	for _, name := range []string{".wh.removed", "etc/.wh.passwd", "opq/.wh..wh..opq", ".wh..wh.plnk"} {
		if exists(filepath.Join(dst, name)) {
			t.Errorf("%s was unpacked as a file", name)
		}
	}
}

// TestWhiteoutsInOverlay mounts an image's layers as berth's runtime will
// and checks that overlayfs hides what the upper layer deletes.
func TestWhiteoutsInOverlay(t *testing.T) {
	imagetest.NeedRoot(t)
	s := newStore(t)
	lower := makeTar(t, dir("etc/"), file("etc/passwd", "root"), file("etc/keep", "k"),
		dir("cache/"), file("cache/old", "old"), file("gone", "g"))
	upper := makeTar(t, file("etc/.wh.passwd", ""), dir("cache/"), file("cache/.wh..wh..opq", ""),
		file("cache/new", "new"), file(".wh.gone", ""))
	cfg := configJSON(t, nil, lower, upper)
	imgs := load(t, s, tarFiles(t, [][2]string{
		{"l1/layer.tar", string(lower)},
		{"l2/layer.tar", string(gzipBytes(t, upper))},
		{"c.json", string(cfg)},
		{"manifest.json", dockerManifest(t, dockerManifestEntry{Config: "c.json", RepoTags: []string{"wh"}, Layers: []string{"l1/layer.tar", "l2/layer.tar"}})},
	}))
	dirs, err := s.LayerDirs(imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(dirs) // overlay lists the top layer first
	work := t.TempDir()
	mnt, up, wk := filepath.Join(work, "m"), filepath.Join(work, "u"), filepath.Join(work, "w")
	for _, d := range []string{mnt, up, wk} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + strings.Join(dirs, ":") + ",upperdir=" + up + ",workdir=" + wk
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	for name, want := range map[string]bool{"etc/passwd": false, "etc/keep": true, "cache/old": false, "cache/new": true, "gone": false} {
		if got := exists(filepath.Join(mnt, name)); got != want {
			t.Errorf("%s visible = %v, want %v", name, got, want)
		}
	}
}

func TestUnpackMetadata(t *testing.T) {
	imagetest.NeedRoot(t)
	suid := file("bin/su", "su")
	suid.mode, suid.uid, suid.gid = 0o4755, 0, 0
	owned := file("home/u/f", "f")
	owned.uid, owned.gid, owned.mode = 1234, 5678, 0o600
	sticky := dir("tmp/")
	sticky.mode = 0o1777
	link := symlink("home/u/link", "f")
	link.uid, link.gid = 42, 43
	xattr := file("x", "x")
	xattr.pax = map[string]string{"SCHILY.xattr.user.berth": "yes", "SCHILY.xattr.trusted.overlay.redirect": "/etc"}
	null := entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, dev: [2]int64{1, 3}}
	fifo := entry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620}
	ro := dir("ro/")
	ro.mode = 0o555
	data := makeTar(t,
		entry{name: "./", typ: tar.TypeDir, mode: 0o755},
		dir("./bin/"), suid, sticky, owned, link, xattr, null, fifo,
		hardlink("bin/su2", "bin/su"),
		ro, file("ro/inside", "i"),
		file("replaced", "a file first"), dir("replaced/"), file("replaced/f", "then a dir"),
		dir("was-dir/"), dir("was-dir/sub/"), file("was-dir/sub/f", "f"), file("was-dir", "now a file"),
	)
	dst, err := unpackTar(t, data)
	if err != nil {
		t.Fatal(err)
	}
	mode := func(name string) os.FileMode {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode()
	}
	if m := mode("bin/su"); m&os.ModeSetuid == 0 || m.Perm() != 0o755 {
		t.Errorf("bin/su mode %v", m)
	}
	if m := mode("tmp"); m&os.ModeSticky == 0 || m.Perm() != 0o777 {
		t.Errorf("tmp mode %v", m)
	}
	if m := mode("ro"); m.Perm() != 0o555 {
		t.Errorf("ro mode %v", m)
	}
	if m := mode("dev/null"); m&os.ModeCharDevice == 0 {
		t.Errorf("dev/null mode %v", m)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "dev/null"), &st); err != nil || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null rdev %d:%d, %v", unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
	}
	if m := mode("run/fifo"); m&os.ModeNamedPipe == 0 || m.Perm() != 0o620 {
		t.Errorf("run/fifo mode %v", m)
	}
	if uid, gid := owner(t, filepath.Join(dst, "home/u/f")); uid != 1234 || gid != 5678 {
		t.Errorf("home/u/f owner %d:%d", uid, gid)
	}
	if uid, gid := owner(t, filepath.Join(dst, "home/u/link")); uid != 42 || gid != 43 {
		t.Errorf("symlink owner %d:%d (lchown)", uid, gid)
	}
	if m := mode("home"); m.Perm() != 0o755 {
		t.Errorf("implicit parent mode %v", m)
	}
	for _, name := range []string{"bin/su", "tmp", "home/u/link", "."} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil || !fi.ModTime().Equal(testTime) {
			t.Errorf("%s mtime %v, want %v (%v)", name, fi.ModTime(), testTime, err)
		}
	}
	a, _ := os.Stat(filepath.Join(dst, "bin/su"))
	b, _ := os.Stat(filepath.Join(dst, "bin/su2"))
	if !os.SameFile(a, b) {
		t.Errorf("bin/su2 is not a hard link of bin/su")
	}
	buf := make([]byte, 16)
	if n, err := unix.Getxattr(filepath.Join(dst, "x"), "user.berth", buf); err != nil || string(buf[:n]) != "yes" {
		t.Errorf("user.berth = %q, %v", buf[:n], err)
	}
	if _, err := unix.Getxattr(filepath.Join(dst, "x"), "trusted.overlay.redirect", buf); err == nil {
		t.Errorf("an image set an overlayfs attribute")
	}
	if got := readLayerFile(t, dst, "was-dir"); got != "now a file" {
		t.Errorf("was-dir = %q", got)
	}
	if got := readLayerFile(t, dst, "replaced/f"); got != "then a dir" {
		t.Errorf("replaced/f = %q", got)
	}
}

func TestUnpackRejectsEscapes(t *testing.T) {
	outside := t.TempDir()
	deep := strings.Repeat("../", 32)
	tests := []struct {
		name    string
		entries []entry
		// target is where the attack would write; it must stay absent.
		target string
		want   string
	}{
		{"dot-dot", []entry{file(deep+outside[1:]+"/dotdot", "x")}, outside + "/dotdot", "path escapes the layer"},
		{"dot-dot inside", []entry{dir("a/"), file("a/../../x", "x")}, "", "path escapes the layer"},
		{"absolute", []entry{file(outside+"/abs", "x")}, outside + "/abs", "absolute path"},
		{"symlink out", []entry{symlink("evil", outside), file("evil/file", "x")}, outside + "/file", `through the symlink "evil"`},
		{"symlink in", []entry{dir("sub/"), symlink("lnk", "sub"), file("lnk/file", "x")}, "", `through the symlink "lnk"`},
		{"symlink chain", []entry{symlink("a", "/"), dir("a/" + outside[1:] + "/"), file("a/"+outside[1:]+"/chain", "x")}, outside + "/chain", `through the symlink "a"`},
		{"hard link to a symlink", []entry{symlink("evil", outside), hardlink("evil2", "evil"), file("evil2/file", "x")}, outside + "/file", `through the symlink "evil2"`},
		{"hard link out", []entry{hardlink("passwd", "../../etc/passwd")}, "", "path escapes the layer"},
		{"hard link absolute", []entry{hardlink("passwd", "/etc/passwd")}, "", "absolute path"},
		{"hard link through symlink", []entry{symlink("etc", "/etc"), hardlink("passwd", "etc/passwd")}, "", `through the symlink "etc"`},
		{"whiteout through symlink", []entry{symlink("evil", outside), file("evil/.wh.x", "")}, outside + "/x", `through the symlink "evil"`},
		{"opaque through symlink", []entry{symlink("evil", outside), file("evil/.wh..wh..opq", "")}, "", `through the symlink "evil"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Import(context.Background(), bytes.NewReader(makeTar(t, tt.entries...)), "evil", ImportOptions{})
			if !errors.Is(err, ErrBadArchive) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadArchive with %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "entry ") {
				t.Errorf("the error does not name the entry: %v", err)
			}
			if tt.target != "" && exists(tt.target) {
				t.Errorf("%s was written outside the layer", tt.target)
			}
			if files := storeFiles(t, s); len(files) != 0 {
				t.Errorf("left behind: %q", files)
			}
		})
	}
	entries, err := os.ReadDir(outside)
	if err != nil || len(entries) != 0 {
		t.Errorf("outside folder: %v, %v", entries, err)
	}
}

// A symlink replaced by a directory is a directory: writing into it is fine
// and stays in the layer.
func TestUnpackSymlinkReplacedByDir(t *testing.T) {
	outside := t.TempDir()
	dst, err := unpackTar(t, makeTar(t, symlink("d", outside), dir("d/"), file("d/f", "in")))
	if err != nil {
		t.Fatal(err)
	}
	if got := readLayerFile(t, dst, "d/f"); got != "in" {
		t.Errorf("d/f = %q", got)
	}
	if exists(filepath.Join(outside, "f")) {
		t.Errorf("written outside")
	}
}

func TestImportRejectsCorruptTarballs(t *testing.T) {
	layer := makeTar(t, file("big", strings.Repeat("z", 10000)))
	gz := gzipBytes(t, layer)
	badCRC := slices.Clone(gz)
	badCRC[len(badCRC)-7] ^= 0x55
	zs := zstdBytes(t, layer)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated tar", layer[:5000], "unexpected EOF"},
		{"truncated gzip", gz[:len(gz)/2], "unexpected EOF"},
		{"gzip checksum", badCRC, "checksum"},
		{"truncated zstd", zs[:len(zs)-8], "unexpected EOF"},
		{"not a tar", []byte(strings.Repeat("garbage!", 200)), "invalid tar header"},
		{"xz", append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, layer...), "xz compression is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Import(context.Background(), bytes.NewReader(tt.data), "bad", ImportOptions{})
			if !errors.Is(err, ErrBadArchive) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadArchive with %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "layer sha256:") {
				t.Errorf("the error does not name the layer: %v", err)
			}
			if files := storeFiles(t, s); len(files) != 0 {
				t.Errorf("left behind: %q", files)
			}
		})
	}
}

func TestDetectCompression(t *testing.T) {
	// Only a name starting with "BZh" and bzip2's block magic could pass
	// for bzip2; docker's detection takes any "BZh".
	plain := makeTar(t, file("BZhello", "not bzip2"))
	tests := []struct {
		name string
		head []byte
		want compression
	}{
		{"tar", plain, uncompressed},
		{"gzip", gzipBytes(t, plain), gzipped},
		{"zstd", zstdBytes(t, plain), zstdCompressed},
		{"bzip2", []byte("BZh91AY&SY\x00\x00"), bzip2Compressed},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0, 0, 0}, xzCompressed},
		{"short", []byte{0x1f}, uncompressed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detect(tt.head); got != tt.want {
				t.Errorf("detect = %v, want %v", got, tt.want)
			}
		})
	}
	dst, err := unpackTar(t, plain)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLayerFile(t, dst, "BZhello"); got != "not bzip2" {
		t.Errorf("BZhello = %q", got)
	}
}

func TestImportBzip2(t *testing.T) {
	bz, err := exec.LookPath("bzip2")
	if err != nil {
		t.Skip("no bzip2 to compress with")
	}
	cmd := exec.Command(bz, "-c")
	cmd.Stdin = bytes.NewReader(makeTar(t, file("f", "bz")))
	data, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	img := importBytes(t, s, data, "bz")
	dirs, err := s.LayerDirs(img)
	if err != nil || readLayerFile(t, dirs[0], "f") != "bz" {
		t.Fatalf("layer: %v", err)
	}
}
