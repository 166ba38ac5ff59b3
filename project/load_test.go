package project

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// writeTree writes files (path relative to dir -> content) and returns dir.
func writeTree(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// projectDir makes a directory with a name of our choosing, for the tests
// that look at the project name derived from it.
func namedDir(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	return writeTree(t, filepath.Join(t.TempDir(), name), files)
}

// load runs Load with an environment of the test's own only.
func loadTest(t *testing.T, opts LoadOptions) (*types.Project, []string, error) {
	t.Helper()
	if opts.Env == nil {
		opts.Env = []string{"HOME=/nonexistent"}
	}
	return Load(context.Background(), opts)
}

func mustLoad(t *testing.T, opts LoadOptions) (*types.Project, []string) {
	t.Helper()
	p, warnings, err := loadTest(t, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p, warnings
}

func envValue(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := s.Environment[key]
	if !ok || v == nil {
		t.Fatalf("service %s: %s not set in %v", s.Name, key, s.Environment)
	}
	return *v
}

const webOnly = "services:\n  web:\n    image: nginx\n"

func TestLoadMergesFilesInOrder(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx:1
    environment: {A: base, B: base}
`,
		"prod.yaml": `
services:
  web:
    image: nginx:2
    environment: {B: prod}
  db:
    image: postgres
`,
	})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, Files: []string{"compose.yaml", "prod.yaml"}})
	web := p.Services["web"]
	if web.Image != "nginx:2" {
		t.Errorf("image = %q, want the override's nginx:2", web.Image)
	}
	if got := envValue(t, web, "A"); got != "base" {
		t.Errorf("A = %q, want base", got)
	}
	if got := envValue(t, web, "B"); got != "prod" {
		t.Errorf("B = %q, want prod", got)
	}
	if _, ok := p.Services["db"]; !ok {
		t.Errorf("db from the second file missing")
	}
	want := []string{filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "prod.yaml")}
	if !slices.Equal(p.ComposeFiles, want) {
		t.Errorf("ComposeFiles = %v, want %v", p.ComposeFiles, want)
	}
	if p.WorkingDir != dir {
		t.Errorf("WorkingDir = %q, want %q", p.WorkingDir, dir)
	}
}

func TestLoadComposeFileEnv(t *testing.T) {
	files := map[string]string{
		"a.yaml": webOnly,
		"b.yaml": "services:\n  web:\n    image: nginx:b\n",
		"c.yaml": "services:\n  web:\n    image: nginx:c\n",
	}
	tests := []struct {
		name  string
		env   []string
		files []string
		want  string
	}{
		{"colon separated", []string{"COMPOSE_FILE=a.yaml:b.yaml"}, nil, "nginx:b"},
		{"custom separator", []string{"COMPOSE_FILE=a.yaml;c.yaml", "COMPOSE_PATH_SEPARATOR=;"}, nil, "nginx:c"},
		{"-f wins", []string{"COMPOSE_FILE=a.yaml:b.yaml"}, []string{"c.yaml"}, "nginx:c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, t.TempDir(), files)
			p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, Env: tt.env, Files: tt.files})
			if got := p.Services["web"].Image; got != tt.want {
				t.Errorf("image = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("from .env", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), files)
		writeTree(t, dir, map[string]string{".env": "COMPOSE_FILE=a.yaml:c.yaml\n"})
		p, _ := mustLoad(t, LoadOptions{WorkingDir: dir})
		if got := p.Services["web"].Image; got != "nginx:c" {
			t.Errorf("image = %q, want nginx:c", got)
		}
	})
	t.Run("missing", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), files)
		_, _, err := loadTest(t, LoadOptions{WorkingDir: dir, Env: []string{"COMPOSE_FILE=a.yaml:nope.yaml"}})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `"nope.yaml" set by COMPOSE_FILE`) {
			t.Errorf("err = %v, want a missing nope.yaml set by COMPOSE_FILE", err)
		}
	})
}

func TestLoadInterpolation(t *testing.T) {
	files := map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx:${TAG}
    environment:
      FROM_ENV: ${ONLY_IN_DOTENV:-unset}
`,
		".env":     "TAG=dotenv\nONLY_IN_DOTENV=yes\n",
		"prod.env": "TAG=prod\n",
	}
	tests := []struct {
		name      string
		env       []string
		envFiles  []string
		wantImage string
		wantFrom  string
	}{
		{".env", nil, nil, "nginx:dotenv", "yes"},
		{"environment wins over .env", []string{"TAG=shell"}, nil, "nginx:shell", "yes"},
		{"--env-file replaces .env", nil, []string{"prod.env"}, "nginx:prod", "unset"},
		{"COMPOSE_ENV_FILES", []string{"COMPOSE_ENV_FILES=prod.env"}, nil, "nginx:prod", "unset"},
		{"COMPOSE_DISABLE_ENV_FILE", []string{"COMPOSE_DISABLE_ENV_FILE=1", "TAG=shell"}, nil, "nginx:shell", "unset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, t.TempDir(), files)
			p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, Env: tt.env, EnvFiles: tt.envFiles})
			web := p.Services["web"]
			if web.Image != tt.wantImage {
				t.Errorf("image = %q, want %q", web.Image, tt.wantImage)
			}
			if got := envValue(t, web, "FROM_ENV"); got != tt.wantFrom {
				t.Errorf("FROM_ENV = %q, want %q", got, tt.wantFrom)
			}
		})
	}
	t.Run("missing --env-file", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), files)
		_, _, err := loadTest(t, LoadOptions{WorkingDir: dir, EnvFiles: []string{"nope.env"}})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "nope.env")) {
			t.Errorf("err = %v, want one naming nope.env", err)
		}
	})
	t.Run("required variable", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": "services:\n  web:\n    image: ${IMG:?set IMG}\n"})
		_, _, err := loadTest(t, LoadOptions{WorkingDir: dir})
		if !errors.Is(err, ErrInvalidConfig) || !strings.HasPrefix(err.Error(), "compose.yaml: ") || !strings.Contains(err.Error(), "set IMG") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestLoadProjectName(t *testing.T) {
	named := "name: fromfile\n" + webOnly
	tests := []struct {
		name    string
		dir     string
		file    string
		dotEnv  string
		env     []string
		flag    string
		want    string
		wantErr string
	}{
		{name: "directory", dir: "myapp", file: webOnly, want: "myapp"},
		{name: "directory normalised", dir: "My.App_2 x", file: webOnly, want: "myapp_2x"},
		{name: "name in the file", dir: "myapp", file: named, want: "fromfile"},
		{name: "COMPOSE_PROJECT_NAME over the file", dir: "myapp", file: named, env: []string{"COMPOSE_PROJECT_NAME=fromenv"}, want: "fromenv"},
		{name: "COMPOSE_PROJECT_NAME in .env", dir: "myapp", file: named, dotEnv: "COMPOSE_PROJECT_NAME=dotenv\n", want: "dotenv"},
		{name: "-p over COMPOSE_PROJECT_NAME", dir: "myapp", file: named, env: []string{"COMPOSE_PROJECT_NAME=fromenv"}, flag: "flag", want: "flag"},
		{name: "invalid -p", dir: "myapp", file: webOnly, flag: "Bad Name", wantErr: `invalid project name "Bad Name"`},
		{name: "invalid COMPOSE_PROJECT_NAME", dir: "myapp", file: webOnly, env: []string{"COMPOSE_PROJECT_NAME=Bad"}, wantErr: `invalid project name "Bad"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"compose.yaml": tt.file}
			if tt.dotEnv != "" {
				files[".env"] = tt.dotEnv
			}
			dir := namedDir(t, tt.dir, files)
			p, _, err := loadTest(t, LoadOptions{WorkingDir: dir, Env: tt.env, ProjectName: tt.flag})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.want {
				t.Errorf("name = %q, want %q", p.Name, tt.want)
			}
		})
	}
}

func TestLoadProfiles(t *testing.T) {
	file := `
services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
  tools:
    image: busybox
    profiles: [tools, all]
`
	tests := []struct {
		name     string
		profiles []string
		env      []string
		want     []string
	}{
		{"none", nil, nil, []string{"web"}},
		{"--profile", []string{"debug"}, nil, []string{"debug", "web"}},
		{"two profiles", []string{"debug", "all"}, nil, []string{"debug", "tools", "web"}},
		{"COMPOSE_PROFILES", nil, []string{"COMPOSE_PROFILES=tools, debug"}, []string{"debug", "tools", "web"}},
		{"--profile over COMPOSE_PROFILES", []string{"tools"}, []string{"COMPOSE_PROFILES=debug"}, []string{"tools", "web"}},
		{"all", []string{"*"}, nil, []string{"debug", "tools", "web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": file})
			p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, Profiles: tt.profiles, Env: tt.env})
			if got := p.ServiceNames(); !slices.Equal(got, tt.want) {
				t.Errorf("services = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadSelectedServices(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": `
services:
  web:
    image: nginx
    depends_on: [api]
  api:
    image: api
    depends_on: [db]
  db:
    image: postgres
    volumes: [data:/var/lib/postgresql/data]
  other:
    image: other
    volumes: [cache:/cache]
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data: {}
  cache: {}
`})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, Services: []string{"api", "debug"}})
	if got, want := p.ServiceNames(), []string{"api", "db", "debug"}; !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	if got, want := p.VolumeNames(), []string{"data"}; !slices.Equal(got, want) {
		t.Errorf("volumes = %v, want %v (unused ones dropped)", got, want)
	}
	_, _, err := loadTest(t, LoadOptions{WorkingDir: dir, Services: []string{"web", "nosuch"}})
	if !errors.Is(err, ErrNoSuchService) || !strings.Contains(err.Error(), "no such service: nosuch") {
		t.Errorf("err = %v, want no such service: nosuch", err)
	}
}

func TestLoadDefaultDiscovery(t *testing.T) {
	t.Run("override file", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), map[string]string{
			"compose.yaml":          webOnly,
			"compose.override.yaml": "services:\n  web:\n    image: nginx:override\n",
		})
		p, _ := mustLoad(t, LoadOptions{WorkingDir: dir})
		if got := p.Services["web"].Image; got != "nginx:override" {
			t.Errorf("image = %q, want nginx:override", got)
		}
		if len(p.ComposeFiles) != 2 {
			t.Errorf("ComposeFiles = %v", p.ComposeFiles)
		}
	})
	t.Run("preference and warning", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), map[string]string{
			"docker-compose.yml": "services:\n  web:\n    image: old\n",
			"compose.yml":        webOnly,
		})
		p, warnings := mustLoad(t, LoadOptions{WorkingDir: dir})
		if got := p.Services["web"].Image; got != "nginx" {
			t.Errorf("image = %q, want compose.yml's nginx", got)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "Found multiple config files") {
			t.Errorf("warnings = %q", warnings)
		}
	})
	t.Run("parent directory", func(t *testing.T) {
		root := namedDir(t, "app", map[string]string{
			"compose.yaml": `
services:
  web:
    image: nginx:${TAG}
    volumes: [./src:/src]
`,
			".env":        "TAG=root\n",
			"sub/deep/.x": "",
		})
		p, _ := mustLoad(t, LoadOptions{WorkingDir: filepath.Join(root, "sub", "deep")})
		if p.WorkingDir != root || p.Name != "app" {
			t.Errorf("WorkingDir = %q, name = %q; want %q, app", p.WorkingDir, p.Name, root)
		}
		if got := p.Services["web"].Image; got != "nginx:root" {
			t.Errorf("image = %q, want the project directory's .env applied", got)
		}
		if got := p.Services["web"].Volumes[0].Source; got != filepath.Join(root, "src") {
			t.Errorf("bind source = %q, want it relative to the project directory", got)
		}
	})
	t.Run("project directory", func(t *testing.T) {
		root := writeTree(t, t.TempDir(), map[string]string{"app/compose.yaml": webOnly, "elsewhere/.x": ""})
		p, _ := mustLoad(t, LoadOptions{WorkingDir: filepath.Join(root, "elsewhere"), ProjectDir: "../app"})
		if p.WorkingDir != filepath.Join(root, "app") || p.Name != "app" {
			t.Errorf("WorkingDir = %q, name = %q", p.WorkingDir, p.Name)
		}
	})
	t.Run("none", func(t *testing.T) {
		dir := t.TempDir()
		for d := dir; ; d = filepath.Dir(d) {
			if len(existingFiles(d, []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"})) > 0 {
				t.Skipf("%s holds a compose file: discovery would find it", d)
			}
			if filepath.Dir(d) == d {
				break
			}
		}
		_, _, err := loadTest(t, LoadOptions{WorkingDir: dir})
		if !errors.Is(err, ErrNoConfigFile) || err.Error() != "no configuration file provided: not found" {
			t.Errorf("err = %v, want no configuration file provided: not found", err)
		}
	})
}

func TestLoadResolves(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx
    env_file: [app.env]
    environment:
      FROM_COMPOSE: "1"
      OVERRIDDEN: compose
      FROM_SHELL:
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - data:/data
      - type: tmpfs
        target: /tmp
volumes:
  data: {}
`,
		"app.env": "FROM_FILE=file\nOVERRIDDEN=file\n",
	})
	p, warnings := mustLoad(t, LoadOptions{WorkingDir: dir, Env: []string{"FROM_SHELL=shell"}})
	web := p.Services["web"]
	for k, want := range map[string]string{"FROM_FILE": "file", "FROM_COMPOSE": "1", "OVERRIDDEN": "compose", "FROM_SHELL": "shell"} {
		if got := envValue(t, web, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if web.EnvFiles != nil {
		t.Errorf("env_file kept after being merged: %v", web.EnvFiles)
	}
	if got := web.Volumes[0].Source; got != filepath.Join(dir, "html") || !web.Volumes[0].ReadOnly {
		t.Errorf("bind = %+v, want an absolute read-only source", web.Volumes[0])
	}
	if got := p.Volumes["data"].Name; got != filepath.Base(dir)+"_data" {
		t.Errorf("volume name = %q", got)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}
}

func TestLoadWarnsUnsupported(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": `
services:
  web:
    image: nginx
    ports: ["8080:80"]
    tty: true
    networks: [front]
networks:
  front: {}
x-common: &common
  foo: bar
`})
	_, warnings := mustLoad(t, LoadOptions{WorkingDir: dir})
	want := []string{"compose.yaml: berth does not support yet (ignored): services.web.tty"}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings = %q\nwant       %q", warnings, want)
	}
}

func TestMarshalConfig(t *testing.T) {
	dir := namedDir(t, "demo", map[string]string{"compose.yaml": `
services:
  web:
    image: nginx
    command: echo $$HOME
    env_file: app.env
`, "app.env": "A=1\n"})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir})

	y, err := MarshalConfig(p, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: demo\n", "    command:\n      - echo\n      - $$HOME\n", "      A: \"1\"\n"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("yaml lacks %q:\n%s", want, y)
		}
	}
	if strings.Contains(string(y), "env_file") {
		t.Errorf("yaml shows env_file, which compose drops once merged:\n%s", y)
	}

	j, err := MarshalConfig(p, "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Name     string
		Services map[string]struct{ Command []string }
	}
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Name != "demo" || !slices.Equal(doc.Services["web"].Command, []string{"echo", "$$HOME"}) {
		t.Errorf("json = %s", j)
	}

	if _, err := MarshalConfig(p, "toml"); err == nil {
		t.Error("MarshalConfig accepted toml")
	}
}

func TestServiceNames(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": `
services:
  web:
    image: x
    depends_on: [api, cache]
  api:
    image: x
    depends_on: [db]
  db:
    image: x
  cache:
    image: x
  admin:
    image: x
`})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir})
	want := []string{"admin", "cache", "db", "api", "web"}
	if got := ServiceNames(p); !slices.Equal(got, want) {
		t.Errorf("ServiceNames = %v, want %v", got, want)
	}
}

// TestCheckServicesRefusesWhatBerthCannotHonour: a key that decides what
// a container is shut off from is honoured or refused before anything is
// made, never a warning; loading alone (ps, down, config) accepts the file.
func TestCheckServicesRefusesWhatBerthCannotHonour(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"pid: host", `compose.yaml: service "web": pid: not supported by berth yet`},
		{"ipc: host", `compose.yaml: service "web": ipc: not supported by berth yet`},
		{"cap_add: [NET_FLY]", `compose.yaml: service "web": cap_add: unknown capability: "NET_FLY"`},
		{`security_opt: ["seccomp=nope.json"]`, `compose.yaml: service "web": security_opt: opening seccomp profile (nope.json) failed`},
		{`security_opt: ["no-new-privileges:maybe"]`, `compose.yaml: service "web": security_opt: invalid option "no-new-privileges:maybe"`},
		{"sysctls: [vm.swappiness=1]", `compose.yaml: service "web": sysctls.vm.swappiness: sysctl "vm.swappiness" is not allowed`},
		{"userns_mode: keep-id", `compose.yaml: service "web": userns_mode: "keep-id" is not supported`},
		{"logging: {driver: syslog}", `compose.yaml: service "web": logging.driver: "syslog" is not supported`},
	} {
		dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    " + tc.key + "\n  other:\n    image: nginx\n"})
		p, _, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
		if err != nil {
			t.Fatalf("%s: load: %v", tc.key, err)
		}
		var e Engine
		if err := e.checkServices(p, []string{"other"}); err != nil {
			t.Errorf("%s: a service not asked for was checked: %v", tc.key, err)
		}
		err = e.checkServices(p, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q…", tc.key, err, tc.want)
		}
	}
}
