package project

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

func TestRestartPolicy(t *testing.T) {
	three := uint64(3)
	tests := []struct {
		name    string
		restart string
		deploy  *types.RestartPolicy
		want    runtime.RestartPolicy
		err     string
	}{
		{"unset", "", nil, runtime.RestartPolicy{Name: "no"}, ""},
		{"always", "always", nil, runtime.RestartPolicy{Name: "always"}, ""},
		{"unless-stopped", "unless-stopped", nil, runtime.RestartPolicy{Name: "unless-stopped"}, ""},
		{"on-failure", "on-failure", nil, runtime.RestartPolicy{Name: "on-failure"}, ""},
		{"on-failure:5", "on-failure:5", nil, runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5}, ""},
		{"deploy any", "", &types.RestartPolicy{Condition: "any"}, runtime.RestartPolicy{Name: "always"}, ""},
		{"deploy wins", "always", &types.RestartPolicy{Condition: "on-failure", MaxAttempts: &three}, runtime.RestartPolicy{Name: "on-failure", MaxRetries: 3}, ""},
		{"deploy none", "always", &types.RestartPolicy{Condition: "none"}, runtime.RestartPolicy{Name: "no"}, ""},
		{"typo", "allways", nil, runtime.RestartPolicy{}, `restart: "allways" is not one of`},
		{"count on always", "always:3", nil, runtime.RestartPolicy{}, "only on-failure takes a retry count"},
		{"bad count", "on-failure:x", nil, runtime.RestartPolicy{}, "must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := service("web", func(s *types.ServiceConfig) {
				s.Restart = tt.restart
				if tt.deploy != nil {
					s.Deploy = &types.DeployConfig{RestartPolicy: tt.deploy}
				}
			})
			got, err := restartPolicy(s)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("restartPolicy = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestResources(t *testing.T) {
	s := service("web", func(s *types.ServiceConfig) {
		s.MemLimit = 64 << 20
		s.MemReservation = 32 << 20
		s.CPUS = 1.5
		s.CPUShares = 512
		s.PidsLimit = 100
	})
	got, err := resources(s)
	want := runtime.Resources{MemoryLimit: 64 << 20, MemoryReservation: 32 << 20, NanoCPUs: 1.5e9, CPUShares: 512, PidsLimit: 100}
	if err != nil || got != want {
		t.Errorf("resources = %+v, %v; want %+v", got, err, want)
	}
	s.Deploy = &types.DeployConfig{Resources: types.Resources{
		Limits:       &types.Resource{MemoryBytes: 128 << 20, NanoCPUs: 0.5, Pids: 50},
		Reservations: &types.Resource{MemoryBytes: 16 << 20},
	}}
	got, err = resources(s)
	want = runtime.Resources{MemoryLimit: 128 << 20, MemoryReservation: 16 << 20, NanoCPUs: 0.5e9, CPUShares: 512, PidsLimit: 50}
	if err != nil || got != want {
		t.Errorf("with deploy: %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []func(*types.ServiceConfig){
		func(s *types.ServiceConfig) { s.MemLimit = 1 << 20 },
		func(s *types.ServiceConfig) { s.MemLimit, s.MemReservation = 64<<20, 128<<20 },
		func(s *types.ServiceConfig) { s.CPUShares = -1 },
	} {
		if _, err := resources(service("web", bad)); err == nil {
			t.Errorf("want an error for %+v", service("web", bad))
		}
	}
}
