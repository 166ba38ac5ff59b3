package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A RUN that deletes files of the layers below, and one that replaces a
// whole directory, make layers whose whiteouts and opaque directories hide
// what is below; a RUN that changes nothing makes no layer, and the files
// the container's start makes (/etc/hosts…) stay out of layers.
func TestRunDeletesAndReplaces(t *testing.T) {
	e := newEnv(t)
	dir := newContext(t, `
FROM busybox
RUN rm /bin/vi && rm -r /home/app && mkdir -p /keep/old && echo old > /keep/old/f && echo x > /keep/x
RUN rm -r /keep && mkdir -p /keep/new && echo new > /keep/new/f
RUN echo nothing changes
RUN ["/bin/sh", "-c", "cd /keep && ls -R"]
`, nil)
	img, out := e.mustBuild(t, Options{ContextDir: dir})
	if !printed(out, "nothing changes") {
		t.Fatalf("output:\n%s", out)
	}
	// busybox, the deletion, the replacement; the two RUNs of no change
	// make no layer.
	if len(img.DiffIDs) != 3 {
		t.Errorf("%d layers, want 3", len(img.DiffIDs))
	}
	got, code := e.runImage(t, img, "/bin/sh", "-c", "ls /bin/vi /home/app 2>&1; find /keep | sort; cat /keep/new/f")
	want := `ls: /bin/vi: No such file or directory
ls: /home/app: No such file or directory
/keep
/keep/new
/keep/new/f
new
`
	if code != 0 || got != want {
		t.Errorf("image holds (exit %d):\n%s\nwant:\n%s", code, got, want)
	}
	layers, err := e.store.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers[1:] {
		for _, stub := range []string{"etc/hosts", "etc/resolv.conf", "etc/hostname", "etc"} {
			if _, err := os.Lstat(filepath.Join(l, stub)); err == nil {
				t.Errorf("layer %s holds %s, which only the container's start made", l, stub)
			}
		}
	}
}

// .dockerignore hides files from COPY with docker's rules: patterns, a
// directory with everything below, and "!" exceptions.
func TestDockerignore(t *testing.T) {
	e := newEnv(t)
	dir := newContext(t, `
FROM busybox
COPY . /ctx/
CMD ["find", "/ctx"]
`, map[string]string{
		".dockerignore":         "# comment\n*.log\n**/*.tmp\nsecret/\n!secret/keep.txt\nnode_modules\nDockerfile\n",
		"app.go":                "package main",
		"debug.log":             "x",
		"sub/deep/a.tmp":        "x",
		"sub/deep/b.txt":        "b",
		"secret/key":            "k",
		"secret/keep.txt":       "keep",
		"node_modules/m/i.js":   "m",
		"sub/node_modules/n.js": "kept: the pattern is anchored at the root",
	})
	img, _ := e.mustBuild(t, Options{ContextDir: dir})
	got, _ := e.runImage(t, img, "/bin/sh", "-c", "cd /ctx && find . | sort")
	want := `.
./.dockerignore
./app.go
./secret
./secret/keep.txt
./sub
./sub/deep
./sub/deep/b.txt
./sub/node_modules
./sub/node_modules/n.js
`
	if got != want {
		t.Errorf("copied:\n%s\nwant:\n%s", got, want)
	}

	// A change of an excluded file changes nothing.
	writeFiles(t, dir, map[string]string{"debug.log": "changed", "secret/key": "changed"})
	again, out := e.mustBuild(t, Options{ContextDir: dir})
	if again.ID != img.ID || !strings.Contains(out, "CACHED") {
		t.Errorf("a change of excluded files rebuilt:\n%s", out)
	}
}

// COPY follows the image's symlinks in its destination, as docker: a file
// copied to /var/run/x lands in /run when /var/run → /run; the source's own
// symlinks are copied as symlinks.
func TestCopySymlinks(t *testing.T) {
	e := newEnv(t)
	dir := newContext(t, `
FROM busybox
RUN mkdir -p /run /var && ln -s /run /var/run && ln -s ../real /linkdir && mkdir /real
COPY f.txt /var/run/
COPY tree/ /linkdir/
`, map[string]string{"f.txt": "f", "tree/a": "a"})
	if err := os.Symlink("a", filepath.Join(dir, "tree", "to-a")); err != nil {
		t.Fatal(err)
	}
	img, _ := e.mustBuild(t, Options{ContextDir: dir})
	got, _ := e.runImage(t, img, "/bin/sh", "-c", "cat /run/f.txt; echo; readlink /var/run; readlink /real/to-a; cat /real/a")
	if got != "f\n/run\na\na\n" {
		t.Errorf("image holds:\n%s", got)
	}
}
