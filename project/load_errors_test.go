package project

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		is     []error
		wantIn string
	}{
		{
			name:   "yaml syntax",
			file:   "services:\n  web:\n    image: nginx\n     ports: x\n",
			is:     []error{ErrInvalidConfig},
			wantIn: "compose.yaml: yaml: line 4",
		},
		{
			name:   "wrong type",
			file:   "services:\n  web:\n    image: nginx\n    ports: 80\n",
			is:     []error{ErrInvalidConfig},
			wantIn: "compose.yaml: services.web.ports must be a list",
		},
		{
			name:   "unknown key",
			file:   "services:\n  web:\n    image: nginx\n    colour: red\n",
			is:     []error{ErrInvalidConfig},
			wantIn: "compose.yaml: services.web: unknown key 'colour'",
		},
		{
			name:   "unknown top-level key",
			file:   webOnly + "foo: bar\n",
			is:     []error{ErrInvalidConfig},
			wantIn: "compose.yaml: unknown key 'foo'",
		},
		{
			name:   "undefined dependency",
			file:   "services:\n  web:\n    image: nginx\n    depends_on: [nosuch]\n",
			is:     []error{ErrInvalidConfig, ErrUndefinedService},
			wantIn: `compose.yaml: service "web" depends on undefined service "nosuch"`,
		},
		{
			name:   "dependency on a disabled service",
			file:   "services:\n  web:\n    image: nginx\n    depends_on: [db]\n  db:\n    image: postgres\n    profiles: [db]\n",
			is:     []error{ErrInvalidConfig, ErrUndefinedService},
			wantIn: `compose.yaml: service "web" depends on undefined service "db"`,
		},
		{
			name:   "cycle",
			file:   "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
			is:     []error{ErrInvalidConfig, ErrDependencyCycle},
			wantIn: "compose.yaml: dependency cycle detected: a -> b -> a",
		},
		{
			name:   "no image",
			file:   "services:\n  web:\n    command: [x]\n",
			is:     []error{ErrInvalidConfig},
			wantIn: `compose.yaml: service "web" has neither an image nor a build context specified`,
		},
		{
			name:   "container name twice",
			file:   "services:\n  a:\n    image: x\n    container_name: same\n  b:\n    image: x\n    container_name: same\n",
			is:     []error{ErrInvalidConfig},
			wantIn: `container name "same" is already in use`,
		},
		{
			name:   "missing env_file",
			file:   "services:\n  web:\n    image: nginx\n    env_file: nope.env\n",
			is:     []error{ErrInvalidConfig, fs.ErrNotExist},
			wantIn: "nope.env",
		},
		{
			name:   "empty",
			file:   "",
			is:     []error{ErrInvalidConfig},
			wantIn: "compose.yaml: empty compose file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": tt.file})
			_, _, err := loadTest(t, LoadOptions{WorkingDir: dir})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("err = %v, not %v", err, target)
				}
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantIn)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("err is not one line: %q", err)
			}
		})
	}
	t.Run("missing -f file", func(t *testing.T) {
		dir := t.TempDir()
		_, _, err := loadTest(t, LoadOptions{WorkingDir: dir, Files: []string{"nope.yaml"}})
		want := "open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"
		if !errors.Is(err, fs.ErrNotExist) || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("second file named", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": webOnly, "sub/bad.yaml": "services: [\n"})
		_, _, err := loadTest(t, LoadOptions{WorkingDir: dir, Files: []string{"compose.yaml", "sub/bad.yaml"}})
		if !errors.Is(err, ErrInvalidConfig) || !strings.HasPrefix(err.Error(), filepath.Join("sub", "bad.yaml")+": yaml: ") {
			t.Errorf("err = %v, want it to name sub/bad.yaml", err)
		}
	})
}

func TestSchemaMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"services.web.ports must be a array", "services.web.ports must be a list"},
		{"services.web.x must be a array, number or string", "services.web.x must be a list, number or string"},
		{"services.web.scale must be a integer", "services.web.scale must be an integer"},
		{"services.web.environment must be a mapping", "services.web.environment must be a mapping"},
		{"services.web.colour false schema", "services.web: unknown key 'colour'"},
		{" additional properties 'foo' not allowed", "unknown key 'foo'"},
		{"services.web additional properties 'a', 'b' not allowed", "services.web: unknown keys 'a', 'b'"},
		{"services.web.cpus must be greater than or equal to 0", "services.web.cpus must be greater than or equal to 0"},
	}
	for _, tt := range tests {
		if got := schemaMessage(tt.in); got != tt.want {
			t.Errorf("schemaMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
