package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A stage on busybox runs sh to make files; a scratch stage copies them
// out with --from: the image runs, holds only what was copied, and its
// history tells each step.
func TestMultiStageScratch(t *testing.T) {
	e := newEnv(t)
	dir := newContext(t, `
FROM busybox AS build
ARG GREETING=hello
ENV OUT=/out
WORKDIR /src
COPY msg.txt .
RUN mkdir -p $OUT && cat msg.txt > $OUT/msg && echo "$GREETING from $(pwd)" > $OUT/greeting && echo built it

FROM scratch
COPY --from=build /out/ /data/
COPY --from=build /bin/busybox /bin/busybox
ENTRYPOINT ["/bin/busybox"]
CMD ["cat", "/data/msg", "/data/greeting"]
`, map[string]string{"msg.txt": "a message\n"})
	img, out := e.mustBuild(t, Options{ContextDir: dir, Tags: []string{"app:1"}, Args: map[string]string{"GREETING": "hi"}})
	if img.Ref != "docker.io/library/app:1" {
		t.Errorf("ref %q", img.Ref)
	}
	for _, want := range []string{"[build 6/6] RUN mkdir", " built it\n", "[stage-1 2/5] COPY --from=build /out/ /data/", "naming to docker.io/library/app:1 done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	got, code := e.runImage(t, img)
	if code != 0 || got != "a message\nhi from /src\n" {
		t.Errorf("image ran %q, exit %d", got, code)
	}
	if len(img.DiffIDs) != 2 {
		t.Errorf("scratch image of two COPYs has %d layers", len(img.DiffIDs))
	}
	cf, err := e.store.ConfigFile(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	var hist []string
	for _, h := range cf.History {
		hist = append(hist, h.CreatedBy)
	}
	want := []string{"COPY --from=build /out/ /data/", "COPY --from=build /bin/busybox /bin/busybox", `ENTRYPOINT ["/bin/busybox"]`, `CMD ["cat" "/data/msg" "/data/greeting"]`}
	if strings.Join(hist, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s", strings.Join(hist, "\n"))
	}
	if cf.Config.Entrypoint[0] != "/bin/busybox" || len(cf.Config.Cmd) != 3 {
		t.Errorf("config %+v", cf.Config)
	}
}

const cacheDockerfile = `
FROM busybox
ENV APP=/app
WORKDIR $APP
COPY a.txt ./
RUN cp a.txt a.copy && echo ran-first
COPY b.txt ./
RUN cat a.copy b.txt > both && echo ran-second
LABEL version=1
EXPOSE 8080
CMD ["cat", "both"]
`

// A rebuild with nothing changed runs nothing: every step is CACHED and
// the image is the same. Changing a copied file rebuilds that step and
// every one after it, and only those.
func TestCacheHitsAndInvalidation(t *testing.T) {
	e := newEnv(t)
	dir := newContext(t, cacheDockerfile, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	opts := Options{ContextDir: dir, Tags: []string{"cached"}}
	first, out := e.mustBuild(t, opts)
	if !printed(out, "ran-first") || !printed(out, "ran-second") {
		t.Fatalf("first build did not run:\n%s", out)
	}

	start := time.Now()
	second, out := e.mustBuild(t, opts)
	took := time.Since(start)
	if second.ID != first.ID {
		t.Errorf("rebuild made %s, not %s", second.ID, first.ID)
	}
	for step, how := range steps(out) {
		if strings.Contains(step, "FROM") || strings.Contains(step, "[internal]") || strings.Contains(step, "exporting") {
			continue
		}
		if how != "CACHED" {
			t.Errorf("rebuild: %s: %s, not CACHED", step, how)
		}
	}
	if printed(out, "ran-first") || printed(out, "ran-second") {
		t.Errorf("rebuild ran a command:\n%s", out)
	}
	if took > 2*time.Second {
		t.Errorf("a rebuild of nothing took %v", took)
	}

	// b.txt changes: its COPY and everything after run again.
	writeFiles(t, dir, map[string]string{"b.txt": "B2\n"})
	third, out := e.mustBuild(t, opts)
	got := steps(out)
	for step, how := range got {
		want := "CACHED"
		switch {
		case strings.Contains(step, "FROM"), strings.Contains(step, "[internal]"), strings.Contains(step, "exporting"):
			continue
		case strings.Contains(step, "COPY b.txt"), strings.Contains(step, "ran-second"),
			strings.Contains(step, "LABEL"), strings.Contains(step, "EXPOSE"), strings.Contains(step, "CMD"):
			want = "DONE"
		}
		if how != want {
			t.Errorf("after a change of b.txt: %s: %s, want %s", step, how, want)
		}
	}
	if printed(out, "ran-first") || !printed(out, "ran-second") {
		t.Errorf("after a change of b.txt:\n%s", out)
	}
	if third.ID == first.ID {
		t.Error("the image did not change")
	}
	if got, _ := e.runImage(t, third); got != "A\nB2\n" {
		t.Errorf("image ran %q", got)
	}
	// A touch alone changes nothing.
	if err := os.Chtimes(filepath.Join(dir, "a.txt"), time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.mustBuild(t, opts); again.ID != third.ID {
		t.Error("a new mtime made a new image")
	}

	// --no-cache runs everything again.
	_, out = e.mustBuild(t, Options{ContextDir: dir, NoCache: true})
	if strings.Contains(out, "CACHED") || !printed(out, "ran-first") {
		t.Errorf("--no-cache:\n%s", out)
	}
}

// --target builds the stage named and the stages it needs, no other; a
// build arg's new value reruns the steps after its ARG, its old value finds
// them in the cache again.
func TestTargetAndArgCache(t *testing.T) {
	e := newEnv(t)
	dir := newContext(t, `
FROM busybox AS broken
RUN exit 1

FROM busybox AS base
ARG V=1
RUN echo "v=$V" > /v && echo ran

FROM base AS good
CMD ["cat", "/v"]

FROM broken
`, nil)
	opts := func(v string) Options {
		return Options{ContextDir: dir, Target: "good", Args: map[string]string{"V": v}}
	}
	img, out := e.mustBuild(t, opts("1"))
	if strings.Contains(out, "broken") || strings.Contains(out, "exit 1") {
		t.Errorf("a stage the target does not need was built:\n%s", out)
	}
	if got, _ := e.runImage(t, img); got != "v=1\n" {
		t.Errorf("image ran %q", got)
	}
	img2, out := e.mustBuild(t, opts("2"))
	if !printed(out, "ran") {
		t.Errorf("a new build arg did not rerun:\n%s", out)
	}
	if got, _ := e.runImage(t, img2); got != "v=2\n" {
		t.Errorf("image ran %q", got)
	}
	img3, out := e.mustBuild(t, opts("1"))
	if printed(out, "ran") || img3.ID != img.ID {
		t.Errorf("the first value again rebuilt:\n%s", out)
	}
}
