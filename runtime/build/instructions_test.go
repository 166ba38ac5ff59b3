package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// tarball makes a tarball of files (path → content; a path ending in "/"
// is a directory), gzip-compressed when zipped.
func tarball(t testing.TB, zipped bool, files ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		name, body := files[i], files[i+1]
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1e9, 0), Uid: 42, Gid: 43}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o750, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	if !zipped {
		return buf.String()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(buf.Bytes())
	zw.Close()
	return z.String()
}

// Every instruction at least once, and what the image then holds and says.
func TestEveryInstruction(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/remote.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
		fmt.Fprint(w, "from the web\n")
	}))
	defer srv.Close()
	dir := newContext(t, `
ARG BASE=busybox
FROM --platform=$BUILDPLATFORM ${BASE} AS base
SHELL ["/bin/sh", "-e", "-c"]
ARG VERSION=1.0
ENV GREETING="hello world" OTHER=x
LABEL org.example.version=$VERSION description="an app"
MAINTAINER someone
WORKDIR /app
WORKDIR sub
RUN echo "$GREETING $VERSION" > greet.txt && echo "$0 $-" > shell.txt
RUN ["/bin/sh", "-c", "echo exec form > exec.txt"]
RUN --network=none test "$(grep -c : /proc/net/dev)" = 1
RUN <<EOT
echo "heredoc run $VERSION" > /heredoc-run
EOT
COPY --chown=app:extra --chmod=0640 files/ /data/
COPY *.txt /globbed/
COPY <<EOF /heredoc.txt
inline $VERSION
EOF
ADD archive.tar.gz /unpacked/
ADD plain.tar /plain
ADD `+srv.URL+`/remote.txt /downloaded/
USER app
RUN id -u > /tmp/me && whoami >> /tmp/me
WORKDIR /srv/owned
RUN touch mine
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD wget -q -O- localhost || exit 1
ONBUILD RUN echo later
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/sub/greet.txt"]
`, map[string]string{
		"files/one":      "1\n",
		"files/sub/two":  "2\n",
		"a.txt":          "a\n",
		"b.txt":          "b\n",
		"archive.tar.gz": tarball(t, true, "top/", "", "top/inner.txt", "inner\n"),
		"plain.tar":      tarball(t, false, "p.txt", "p\n"),
	})
	img, out := e.mustBuild(t, Options{ContextDir: dir, Args: map[string]string{"VERSION": "2.0"}, Labels: map[string]string{"built.by": "berth"}})

	cfg := img.Config
	checks := []struct {
		what      string
		got, want any
	}{
		{"env", cfg.Env, []string{"PATH=/bin", "GREETING=hello world", "OTHER=x"}},
		{"labels", cfg.Labels, map[string]string{"org.example.version": "2.0", "description": "an app", "built.by": "berth"}},
		{"workdir", cfg.WorkingDir, "/srv/owned"},
		{"user", cfg.User, "app"},
		{"shell", cfg.Shell, []string{"/bin/sh", "-e", "-c"}},
		{"entrypoint", cfg.Entrypoint, []string{"/bin/sh", "-c"}},
		{"cmd", cfg.Cmd, []string{"cat /app/sub/greet.txt"}},
		{"stopsignal", cfg.StopSignal, "SIGQUIT"},
		{"onbuild", cfg.OnBuild, []string{"RUN echo later"}},
		{"ports", sortedKeys(cfg.ExposedPorts), []string{"53/udp", "80/tcp", "8000/tcp", "8001/tcp"}},
		{"volumes", sortedKeys(cfg.Volumes), []string{"/cache", "/data"}},
		{"healthcheck", fmt.Sprint(cfg.Healthcheck.Test, cfg.Healthcheck.Interval, cfg.Healthcheck.Retries), "[CMD-SHELL wget -q -O- localhost || exit 1] 5s 2"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	cf, err := e.store.ConfigFile(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cf.Author != "someone" {
		t.Errorf("author %q", cf.Author)
	}
	// Layers: busybox, two WORKDIRs, three RUNs (RUN --network makes
	// none), three COPYs, three ADDs, RUN, WORKDIR, RUN.
	if len(img.DiffIDs) != 15 {
		t.Errorf("%d layers, want 15", len(img.DiffIDs))
	}

	got, code := e.runImage(t, img)
	if code != 0 || got != "hello world 2.0\n" {
		t.Errorf("CMD printed %q, exit %d", got, code)
	}
	script := `cd /app/sub && cat shell.txt exec.txt /tmp/me /heredoc.txt /heredoc-run
stat -c '%n %u:%g %a' /data /data/one /data/sub /data/sub/two /srv /srv/owned /srv/owned/mine /app
ls /globbed
stat -c '%n %u:%g %a %Y' /unpacked/top /unpacked/top/inner.txt /plain/p.txt /downloaded/remote.txt
cat /unpacked/top/inner.txt /downloaded/remote.txt`
	got, code = e.runImage(t, img, "/bin/sh", "-c", script)
	want := `/bin/sh ce
exec form
1000
app
inline 2.0
heredoc run 2.0
/data 1000:2000 640
/data/one 1000:2000 640
/data/sub 1000:2000 640
/data/sub/two 1000:2000 640
/srv 1000:1000 755
/srv/owned 1000:1000 755
/srv/owned/mine 1000:1000 644
/app 0:0 755
a.txt
b.txt
/unpacked/top 42:43 750 1000000000
/unpacked/top/inner.txt 42:43 644 1000000000
/plain/p.txt 42:43 644 1000000000
/downloaded/remote.txt 0:0 600 1445412480
inner
from the web
`
	if code != 0 || got != want {
		t.Errorf("the image holds (exit %d):\n%s\nwant:\n%s", code, got, want)
	}
	if !strings.Contains(out, "downloading "+srv.URL) {
		t.Errorf("output:\n%s", out)
	}
}

func sortedKeys(m map[string]struct{}) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
