package project

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name                string
		imgEntry, imgCmd    []string
		entrypoint, command types.ShellCommand
		want                []string
	}{
		{"image only", []string{"/entry"}, []string{"run"}, nil, nil, []string{"/entry", "run"}},
		{"command replaces CMD", []string{"/entry"}, []string{"run"}, nil, types.ShellCommand{"other"}, []string{"/entry", "other"}},
		{"entrypoint drops the image CMD", []string{"/entry"}, []string{"run"}, types.ShellCommand{"/mine"}, nil, []string{"/mine"}},
		{"entrypoint and command", []string{"/entry"}, []string{"run"}, types.ShellCommand{"/mine"}, types.ShellCommand{"x"}, []string{"/mine", "x"}},
		{"empty entrypoint resets it", []string{"/entry"}, []string{"run"}, types.ShellCommand{}, types.ShellCommand{"sh"}, []string{"sh"}},
		{"nothing at all", nil, nil, nil, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := commandLine(tt.imgEntry, tt.imgCmd, tt.entrypoint, tt.command)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("commandLine = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	got := environment(
		[]string{"PATH=/img/bin", "A=image", "B=image"},
		types.MappingWithEquals{"B": ptr("service"), "C": ptr("new"), "UNSET": nil},
		"host1",
	)
	want := []string{"PATH=/img/bin", "HOSTNAME=host1", "A=image", "B=service", "C=new"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment = %q, want %q", got, want)
	}
	if got := environment(nil, nil, "h"); got[0] != "PATH="+defaultPath {
		t.Errorf("no PATH in the image: got %q, want docker's default", got[0])
	}
}

func TestContainerSpec(t *testing.T) {
	dir := t.TempDir()
	grace := types.Duration(3 * time.Second)
	p := &types.Project{Name: "demo", WorkingDir: dir, ComposeFiles: []string{filepath.Join(dir, "compose.yaml")}}
	svc := service("web", func(s *types.ServiceConfig) {
		s.Command = types.ShellCommand{"serve", "--port", "80"}
		s.Labels = types.Labels{"mine": "yes"}
		s.StopGracePeriod = &grace
		s.ExtraHosts = types.HostsList{"db.local": []string{"10.0.0.2"}}
		s.Volumes = []types.ServiceVolumeConfig{
			{Type: types.VolumeTypeBind, Source: filepath.Join(dir, "made"), Target: "/src", ReadOnly: true},
			{Type: types.VolumeTypeVolume, Source: "data", Target: "/data"},
			{Type: types.VolumeTypeTmpfs, Target: "/scratch", Tmpfs: &types.ServiceVolumeTmpfs{Size: 1 << 20}},
		}
		s.Tmpfs = types.StringList{"/run:size=65536,mode=755"}
	})
	img := image.Image{ID: "sha256:abc", Config: v1.Config{
		Entrypoint: []string{"/app"}, Cmd: []string{"default"}, WorkingDir: "/srv", User: "app",
		Env: []string{"A=1"}, Labels: map[string]string{"from": "image", "mine": "image"}, StopSignal: "SIGQUIT",
	}}
	spec, err := containerSpec(specInput{
		Project: p, Service: svc, Number: 2, Image: img, Layers: []string{"/l1"}, ConfigHash: "h",
		Volumes: map[string]volumeMount{"data": {Path: "/vol/data", Created: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Name != "demo-web-2" || spec.Hostname != spec.ID[:12] {
		t.Errorf("name %q hostname %q (id %q)", spec.Name, spec.Hostname, spec.ID)
	}
	if got := strings.Join(spec.Args, " "); got != "/app serve --port 80" {
		t.Errorf("args %q", got)
	}
	if spec.Cwd != "/srv" || spec.User != "app" || spec.StopSignal != "SIGQUIT" || spec.StopTimeout != 3*time.Second {
		t.Errorf("cwd %q user %q stop %q %v", spec.Cwd, spec.User, spec.StopSignal, spec.StopTimeout)
	}
	for k, v := range map[string]string{
		"from": "image", "mine": "yes", LabelProject: "demo", LabelService: "web",
		LabelNumber: "2", LabelConfigHash: "h", LabelOneoff: "False",
	} {
		if spec.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, spec.Labels[k], v)
		}
	}
	if !reflect.DeepEqual(spec.Hosts, []string{"10.0.0.2\tdb.local"}) {
		t.Errorf("hosts %q", spec.Hosts)
	}
	wantMounts := []runtime.Mount{
		{Type: runtime.MountBind, Source: filepath.Join(dir, "made"), Target: "/src", ReadOnly: true},
		{Type: runtime.MountBind, Source: "/vol/data", Target: "/data", CopyUp: true},
		{Type: runtime.MountTmpfs, Target: "/scratch", TmpfsSize: 1 << 20},
		{Type: runtime.MountTmpfs, Target: "/run", TmpfsSize: 65536, TmpfsMode: 0o755},
	}
	if !reflect.DeepEqual(spec.Mounts, wantMounts) {
		t.Errorf("mounts\n%+v\nwant\n%+v", spec.Mounts, wantMounts)
	}
	if _, err := os.Stat(filepath.Join(dir, "made")); err != nil {
		t.Errorf("a missing bind source is created as docker compose does: %v", err)
	}
}

func TestContainerSpecErrors(t *testing.T) {
	dir := t.TempDir()
	p := &types.Project{Name: "demo", WorkingDir: dir}
	img := image.Image{ID: "sha256:abc", Config: v1.Config{Cmd: []string{"true"}}}
	tests := []struct {
		name string
		svc  types.ServiceConfig
		want string
	}{
		{"no command", service("web", nil), "no command specified"},
		{"bind source missing without create_host_path", withVolume(types.ServiceVolumeConfig{Type: types.VolumeTypeBind, Source: filepath.Join(dir, "nope"), Target: "/x", Bind: &types.ServiceVolumeBind{CreateHostPath: false}}),
			`volumes[0]: bind source path "` + filepath.Join(dir, "nope") + `" does not exist`},
		{"relative target", withVolume(types.ServiceVolumeConfig{Type: types.VolumeTypeTmpfs, Target: "rel"}),
			`volumes[0]: target "rel" must be an absolute path`},
		{"undeclared volume", withVolume(types.ServiceVolumeConfig{Type: types.VolumeTypeVolume, Source: "ghost", Target: "/g"}),
			`volumes[0]: volume "ghost" is not declared`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := specInput{Project: p, Service: tt.svc, Number: 1, Image: img}
			if tt.name == "no command" {
				in.Image = image.Image{ID: "sha256:abc"}
			}
			_, err := containerSpec(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// service makes a service of image bb; edit sets the rest.
func service(name string, edit func(*types.ServiceConfig)) types.ServiceConfig {
	s := types.ServiceConfig{Name: name}
	s.Image = "bb"
	if edit != nil {
		edit(&s)
	}
	return s
}

func withVolume(v types.ServiceVolumeConfig) types.ServiceConfig {
	return service("web", func(s *types.ServiceConfig) {
		s.Command = types.ShellCommand{"x"}
		s.Volumes = []types.ServiceVolumeConfig{v}
	})
}
