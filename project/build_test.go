package project

import (
	"context"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/build"
	"github.com/berth-dev/berth/runtime/image"
)

func TestImageName(t *testing.T) {
	p := loadCompose(t, `
services:
  named: {image: reg/app:1, build: .}
  built: {build: .}
  pulled: {image: redis}
`)
	for svc, want := range map[string]string{"named": "reg/app:1", "built": "np-built", "pulled": "redis"} {
		if got := imageName(p, p.Services[svc]); got != want {
			t.Errorf("%s: image %q, want %q", svc, got, want)
		}
	}
}

func TestBuildOptions(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"compose.yaml": `
services:
  web:
    build:
      context: app
      dockerfile: Dockerfile.dev
      args:
        - FROM_ENV
        - FROM_DOTENV
        - UNSET
        - FIXED=1
        - OVERRIDDEN=file
      target: dev
      labels: {team: a}
      tags: [web:dev]
      network: none
  inline:
    build:
      dockerfile_inline: "FROM bb\n"
      no_cache: true
      pull: true
  plain:
    build: .
`,
		".env":      "FROM_DOTENV=dotenv\nFLAG_ENV=flag\n",
		"app/.keep": "",
	})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, ProjectName: "proj", Env: []string{"FROM_ENV=shell"}})

	got, err := buildOptions(p, p.Services["web"], BuildOptions{Args: []string{"OVERRIDDEN=flag", "FLAG_ENV", "FLAG_UNSET"}})
	if err != nil {
		t.Fatal(err)
	}
	want := build.Options{
		ContextDir: filepath.Join(dir, "app"),
		Dockerfile: "Dockerfile.dev",
		Args: map[string]string{
			"FROM_ENV": "shell", "FROM_DOTENV": "dotenv", "FIXED": "1", "OVERRIDDEN": "flag", "FLAG_ENV": "flag",
		},
		Target: "dev",
		Labels: map[string]string{
			"team": "a", LabelProject: "proj", LabelService: "web", LabelVersion: Version,
		},
		Tags:    []string{"proj-web", "web:dev"},
		Network: "none",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("web:\n got %+v\nwant %+v", got, want)
	}

	got, err = buildOptions(p, p.Services["inline"], BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Inline != "FROM bb\n" || got.Dockerfile != "" || !got.NoCache || got.Pull != build.PullAlways || got.ContextDir != dir {
		t.Errorf("inline: %+v", got)
	}

	got, err = buildOptions(p, p.Services["plain"], BuildOptions{NoCache: true, Pull: true})
	if err != nil {
		t.Fatal(err)
	}
	if !got.NoCache || got.Pull != build.PullAlways || !slices.Equal(got.Tags, []string{"proj-plain"}) || len(got.Args) != 0 {
		t.Errorf("plain with --no-cache --pull: %+v", got)
	}
	if got.Dockerfile != "Dockerfile" || got.ContextDir != dir {
		t.Errorf("plain: context %q, dockerfile %q", got.ContextDir, got.Dockerfile)
	}
}

func TestBuildInputErrors(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"compose.yaml": `
services:
  nodir: {build: ./nosuch}
  nofile: {build: {context: app, dockerfile: Dockerfile.dev}}
  remote: {build: "https://github.com/x/y.git"}
  bridged: {build: {context: app, network: bridge}}
`,
		"app/Dockerfile": "FROM bb\n",
	})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, ProjectName: "proj"})
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	e := &Engine{images: store, events: func(ev Event) { events = append(events, string(ev.Kind)) }}
	for svc, want := range map[string]string{
		"nodir":   `compose.yaml: service "nodir": build.context ` + filepath.Join(dir, "nosuch") + `: no such folder`,
		"nofile":  `compose.yaml: service "nofile": build.dockerfile "Dockerfile.dev": ` + filepath.Join(dir, "app", "Dockerfile.dev") + `: no such file`,
		"remote":  `compose.yaml: service "remote": build.context "https://github.com/x/y.git": berth builds from a local folder only`,
		"bridged": `compose.yaml: service "bridged": build.network "bridge": berth builds with "default" (the host's network), "host" or "none"`,
	} {
		err := e.Build(context.Background(), p, BuildOptions{Services: []string{svc}})
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: err = %v\nwant %s", svc, err, want)
		}
	}
	if len(events) != 0 {
		t.Errorf("events %q before the builder started", events)
	}
	if err := e.Build(context.Background(), p, BuildOptions{Services: []string{"nosuch"}}); err == nil || !strings.Contains(err.Error(), "no such service: nosuch") {
		t.Errorf("unknown service: %v", err)
	}
}

func TestUpBuilds(t *testing.T) {
	tests := []struct {
		name    string
		compose string
		have    []string
		flags   imageFlags
		want    []string
		err     string
	}{
		{
			name: "missing is built, present is not, image-only never",
			compose: `
  a: {build: .}
  b: {build: .}
  c: {image: c}`,
			have: []string{"np-b"},
			want: []string{"a"},
		},
		{
			name: "the image's name, when set, is what is looked for",
			compose: `
  a: {image: reg/a:1, build: .}
  b: {image: reg/b:1, build: .}`,
			have: []string{"reg/a:1"},
			want: []string{"b"},
		},
		{
			name: "pull_policy build always builds",
			compose: `
  a: {build: ., pull_policy: build}
  b: {build: .}`,
			have: []string{"np-a", "np-b"},
			want: []string{"a"},
		},
		{
			name: "--build builds every buildable one",
			compose: `
  a: {build: .}
  b: {image: b}`,
			have:  []string{"np-a", "b"},
			flags: imageFlags{Build: true},
			want:  []string{"a"},
		},
		{
			name: "--pull always replaces pull_policy build",
			compose: `
  a: {build: ., pull_policy: build}`,
			have:  []string{"np-a"},
			flags: imageFlags{Pull: "always"},
		},
		{
			name: "one image is built once",
			compose: `
  a: {image: shared, build: .}
  b: {image: shared, build: .}`,
			want: []string{"a"},
		},
		{
			name: "--no-build with the images present",
			compose: `
  a: {build: ., pull_policy: build}`,
			have:  []string{"np-a"},
			flags: imageFlags{NoBuild: true},
		},
		{
			name: "--no-build with an image missing",
			compose: `
  a: {build: .}`,
			flags: imageFlags{NoBuild: true},
			err:   `service "a": image "np-a" is not in the local store and up --no-build is set: build it with 'berth build a'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadCompose(t, "services:"+tt.compose+"\n")
			has := func(ref string) (bool, error) { return slices.Contains(tt.have, ref), nil }
			names := slices.Sorted(maps.Keys(p.Services))
			got, err := upBuilds(p, names, tt.flags, has)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("builds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnsureImagesNoBuild(t *testing.T) {
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{images: store}
	p := loadCompose(t, `
services:
  web: {build: .}
`)
	err = e.ensureImages(context.Background(), p, []string{"web"}, imageFlags{NoBuild: true})
	if err == nil || err.Error() != `compose.yaml: service "web": image "np-web" is not in the local store and up --no-build is set: build it with 'berth build web'` {
		t.Errorf("err = %v", err)
	}
	if err := e.ensureImages(context.Background(), p, []string{"web"}, imageFlags{Build: true, NoBuild: true}); err == nil {
		t.Error("--build with --no-build accepted")
	}
}
