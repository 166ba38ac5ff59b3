// Package imagetest builds small root filesystems for tests, offline, from
// Debian's busybox-static: no registry is ever needed.
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/usr/bin/busybox"

// Passwd and Group are the account files of the test root: root, nobody and
// an "app" user (1000:1000) with a supplementary group "extra" (2000).
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1000:1000:app:/home/app:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	Group = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n"
)

// NeedRoot skips a test that needs root, unless BERTH_REQUIRE_ROOT is set
// (as CI sets it), where a missing privilege fails the test instead: CI must
// never pass by skipping the tests that run real containers.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("BERTH_REQUIRE_ROOT") != "" {
		t.Fatal("this test runs real containers and needs root (BERTH_REQUIRE_ROOT is set)")
	}
	t.Skip("needs root: runs real containers")
}

// NeedBusybox skips (or, under BERTH_REQUIRE_ROOT, fails) when busybox-static
// is not installed.
func NeedBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err == nil {
		return
	}
	if os.Getenv("BERTH_REQUIRE_ROOT") != "" {
		t.Fatal(BusyboxPath + " is missing: apt-get install busybox-static")
	}
	t.Skip(BusyboxPath + " is missing: apt-get install busybox-static")
}

// Files returns the files of a busybox root as path → content, with the
// applets as symlinks (marked by a "->" prefix) to /bin/busybox.
func files(t testing.TB) (map[string]string, []string) {
	t.Helper()
	NeedBusybox(t)
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.ContainsAny(a, "[/") {
			applets = append(applets, a)
		}
	}
	return map[string]string{
		"etc/passwd": Passwd,
		"etc/group":  Group,
	}, applets
}

// Rootfs writes a busybox root filesystem into a new directory and returns
// it: /bin/busybox, every applet as a symlink in /bin, /etc/passwd and
// /etc/group, and empty /tmp, /root, /home/app, /proc, /dev, /sys.
func Rootfs(t testing.TB) string {
	t.Helper()
	extra, applets := files(t)
	dir := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "root", "home/app", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "home/app"), 1000, 1000); err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// RootfsTar returns the same busybox root as an uncompressed tarball, the
// input of `berth image import`.
func RootfsTar(t testing.TB) []byte {
	t.Helper()
	extra, applets := files(t)
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if len(body) > 0 {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, d := range []string{"bin/", "etc/", "root/", "home/", "proc/", "dev/", "sys/"} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "home/app/", Mode: 0o755, Uid: 1000, Gid: 1000}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))}, bb)
	for _, a := range applets {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
	}
	for _, name := range []string{"etc/group", "etc/passwd"} {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(extra[name]))}, []byte(extra[name]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// DockerSaveTar returns a `docker save` tarball of the busybox root tagged
// ref, with cmd as its CMD: the input of `berth image load`.
func DockerSaveTar(t testing.TB, ref string, cmd ...string) []byte {
	t.Helper()
	layerTar := RootfsTar(t)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", goruntime.GOARCH
	cfg.Config.Cmd = cmd
	cfg.Config.Env = []string{"PATH=/bin", "FROM_IMAGE=yes"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
