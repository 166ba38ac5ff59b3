package project

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

func strp(s string) *string { return &s }

// richService is docker compose's own hash fixture (pkg/compose/hash_test.go).
func richService() types.ServiceConfig {
	replicas := 3
	s := types.ServiceConfig{
		Name:    "web",
		Restart: types.RestartPolicyAlways,
		Deploy:  &types.DeployConfig{Replicas: &replicas},
	}
	s.Image = "nginx:latest"
	s.Command = types.ShellCommand{"nginx", "-g", "daemon off;"}
	s.User = "nobody"
	s.Tty = true
	s.StdinOpen = true
	s.Environment = types.MappingWithEquals{"A": strp("1"), "B": nil}
	s.Labels = types.Labels{"com.example": "v"}
	s.Annotations = types.Mapping{"note": "x"}
	s.CapAdd = []string{"NET_ADMIN"}
	s.ExtraHosts = types.HostsList{"alpha": []string{"10.0.0.1"}}
	s.Ports = []types.ServicePortConfig{{Target: 80, Published: "8080", Protocol: "tcp"}}
	s.HealthCheck = &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD", "true"}}
	s.Volumes = []types.ServiceVolumeConfig{{Type: types.VolumeTypeVolume, Source: "data", Target: "/data"}}
	s.Networks = map[string]*types.ServiceNetworkConfig{"default": nil}
	return s
}

// The value docker compose's TestHashGoldenValues pins for richService: a
// container created by docker compose is kept by berth and the reverse.
func TestServiceHashMatchesDockerCompose(t *testing.T) {
	got, err := ServiceHash(richService())
	if err != nil {
		t.Fatal(err)
	}
	const want = "75bc312132c71fac4971d123202631b6978ac9d796336621af744d46611b42a2"
	if got != want {
		t.Errorf("ServiceHash = %s, want docker compose's %s", got, want)
	}
}

func TestServiceHashChanges(t *testing.T) {
	base, err := ServiceHash(richService())
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	tests := []struct {
		name    string
		edit    func(s *types.ServiceConfig)
		changes bool
	}{
		{"image", func(s *types.ServiceConfig) { s.Image = "nginx:1.27" }, true},
		{"command", func(s *types.ServiceConfig) { s.Command = types.ShellCommand{"nginx"} }, true},
		{"environment", func(s *types.ServiceConfig) { s.Environment["A"] = strp("2") }, true},
		{"new env var", func(s *types.ServiceConfig) { s.Environment["C"] = strp("3") }, true},
		{"labels", func(s *types.ServiceConfig) { s.Labels["x"] = "y" }, true},
		{"volumes", func(s *types.ServiceConfig) { s.Volumes = nil }, true},
		{"healthcheck test", func(s *types.ServiceConfig) { s.HealthCheck.Test = types.HealthCheckTest{"CMD", "false"} }, true},
		{"healthcheck interval", func(s *types.ServiceConfig) {
			d := types.Duration(time.Second)
			s.HealthCheck.Interval = &d
		}, true},
		{"healthcheck disabled", func(s *types.ServiceConfig) { s.HealthCheck.Disable = true }, true},
		{"scale", func(s *types.ServiceConfig) { s.Scale = &one }, false},
		{"replicas", func(s *types.ServiceConfig) { s.Deploy.Replicas = &one }, false},
		{"depends_on", func(s *types.ServiceConfig) {
			s.DependsOn = types.DependsOnConfig{"db": {Condition: types.ServiceConditionStarted, Required: true}}
		}, false},
		{"depends_on condition and restart", func(s *types.ServiceConfig) {
			s.DependsOn = types.DependsOnConfig{"db": {Condition: types.ServiceConditionHealthy, Restart: true, Required: true}}
		}, false},
		{"profiles", func(s *types.ServiceConfig) { s.Profiles = []string{"debug"} }, false},
		{"pull_policy", func(s *types.ServiceConfig) { s.PullPolicy = types.PullPolicyAlways }, false},
		{"build", func(s *types.ServiceConfig) { s.Build = &types.BuildConfig{Context: "."} }, false},
		{"name", func(s *types.ServiceConfig) { s.Name = "other" }, false},
		{"custom labels", func(s *types.ServiceConfig) { s.CustomLabels = types.Labels{"a": "b"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := richService()
			tt.edit(&s)
			got, err := ServiceHash(s)
			if err != nil {
				t.Fatal(err)
			}
			if changed := got != base; changed != tt.changes {
				t.Errorf("hash changed = %v, want %v", changed, tt.changes)
			}
		})
	}
}

func TestServiceHashLeavesCallerAlone(t *testing.T) {
	s := richService()
	if _, err := ServiceHash(s); err != nil {
		t.Fatal(err)
	}
	if s.Deploy.Replicas == nil || *s.Deploy.Replicas != 3 {
		t.Errorf("ServiceHash cleared the caller's deploy.replicas")
	}
}

func TestPinKeyOrder(t *testing.T) {
	tests := []struct{ in, want string }{
		// Already in order: unchanged, byte for byte.
		{`{"profiles":["p"],"command":["c"],"image":"img","user":"u"}`, `{"profiles":["p"],"command":["c"],"image":"img","user":"u"}`},
		{`{"user":"u","image":"img"}`, `{"image":"img","user":"u"}`},
		// Unknown keys after the known ones, sorted.
		{`{"zz_new":"2","image":"img","aa_new":"1"}`, `{"image":"img","aa_new":"1","zz_new":"2"}`},
		{`{}`, `{}`},
	}
	for _, tt := range tests {
		got, err := pinKeyOrder([]byte(tt.in), hashKeyOrder)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("pinKeyOrder(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// Every top-level JSON key of ServiceConfig that docker compose knows must
// be in hashKeyOrder; the ones compose-go added since are listed here, so
// that a compose-go upgrade adding more fails this test and gets a look.
func TestHashKeyOrderCoversServiceConfig(t *testing.T) {
	newer := map[string]bool{"pull_refresh_after": true, "umask": true}
	known := map[string]bool{}
	for _, k := range hashKeyOrder {
		known[k] = true
	}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			if !known[name] && !newer[name] {
				t.Errorf("ServiceConfig key %q is in neither hashKeyOrder nor the known newer keys", name)
			}
		}
	}
	walk(reflect.TypeOf(types.ServiceConfig{}))
	// and the hash really does see them
	raw, err := json.Marshal(types.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pinKeyOrder(raw, hashKeyOrder); err != nil {
		t.Fatal(err)
	}
}
