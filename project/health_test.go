package project

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/runtime"
)

func TestHealthcheck(t *testing.T) {
	dur := func(d time.Duration) *types.Duration { v := types.Duration(d); return &v }
	retries := func(n uint64) *uint64 { return &n }
	image := &v1.HealthConfig{
		Test:     []string{"CMD-SHELL", "wget -q localhost"},
		Interval: 10 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, Retries: 5,
	}
	tests := []struct {
		name    string
		service *types.HealthCheckConfig
		image   *v1.HealthConfig
		shell   []string
		want    *runtime.Healthcheck
		wantErr string
	}{
		{name: "none anywhere"},
		{
			name: "CMD with every duration",
			service: &types.HealthCheckConfig{
				Test:     types.HealthCheckTest{"CMD", "pg_isready", "-U", "app"},
				Interval: dur(time.Second), Timeout: dur(3 * time.Second), Retries: retries(4),
				StartPeriod: dur(20 * time.Second), StartInterval: dur(500 * time.Millisecond),
			},
			want: &runtime.Healthcheck{
				Args:     []string{"pg_isready", "-U", "app"},
				Interval: time.Second, Timeout: 3 * time.Second, Retries: 4,
				StartPeriod: 20 * time.Second, StartInterval: 500 * time.Millisecond,
			},
		},
		{
			// the plain-string form, as compose-go loads it
			name:    "CMD-SHELL runs in /bin/sh",
			service: &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD-SHELL", "test -f /ready"}},
			want:    &runtime.Healthcheck{Args: []string{"/bin/sh", "-c", "test -f /ready"}},
		},
		{
			name:    "CMD-SHELL runs in the image's SHELL",
			service: &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD-SHELL", "exit 0"}},
			shell:   []string{"/bin/bash", "-ec"},
			want:    &runtime.Healthcheck{Args: []string{"/bin/bash", "-ec", "exit 0"}},
		},
		{
			name:  "the image's alone",
			image: image,
			want: &runtime.Healthcheck{
				Args:     []string{"/bin/sh", "-c", "wget -q localhost"},
				Interval: 10 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, Retries: 5,
			},
		},
		{
			name:    "the service's test, the image's durations",
			service: &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD", "true"}, Interval: dur(time.Second)},
			image:   image,
			want: &runtime.Healthcheck{
				Args:     []string{"true"},
				Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, Retries: 5,
			},
		},
		{
			name:    "the service's durations, the image's test",
			service: &types.HealthCheckConfig{Retries: retries(1)},
			image:   image,
			want: &runtime.Healthcheck{
				Args:     []string{"/bin/sh", "-c", "wget -q localhost"},
				Interval: 10 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, Retries: 1,
			},
		},
		{name: "NONE overrides the image", service: &types.HealthCheckConfig{Test: types.HealthCheckTest{"NONE"}}, image: image},
		{name: "disable overrides the image", service: &types.HealthCheckConfig{Disable: true, Test: types.HealthCheckTest{"CMD", "true"}}, image: image},
		{name: "NONE in the image", image: &v1.HealthConfig{Test: []string{"NONE"}}},
		{name: "durations without a test", service: &types.HealthCheckConfig{Interval: dur(time.Second)}},
		{
			name:    "unknown form",
			image:   &v1.HealthConfig{Test: []string{"HTTP", "/health"}},
			wantErr: `healthcheck.test: "HTTP": must start with CMD, CMD-SHELL or NONE`,
		},
		{
			name:    "CMD without a command",
			service: &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD"}},
			wantErr: "healthcheck.test: CMD needs a command",
		},
		{
			name:    "interval under a millisecond",
			service: &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD", "true"}, Interval: dur(time.Microsecond)},
			wantErr: "healthcheck.interval: 1µs: must be at least 1ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := healthcheck(tt.service, tt.image, tt.shell)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("healthcheck = %+v\nwant          %+v", got, tt.want)
			}
		})
	}
}

// A healthcheck written as a string in the file reaches the spec as a
// shell probe, and disable: true leaves none.
func TestLoadedHealthcheck(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": `
services:
  web:
    image: nginx
    healthcheck:
      test: wget -q -O- localhost
      interval: 2s
      start_interval: 100ms
  off:
    image: nginx
    healthcheck:
      disable: true
`})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir})
	got, err := serviceHealthcheck(p.Services["web"], v1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtime.Healthcheck{Args: []string{"/bin/sh", "-c", "wget -q -O- localhost"}, Interval: 2 * time.Second, StartInterval: 100 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("web = %+v, want %+v", got, want)
	}
	if got, err := serviceHealthcheck(p.Services["off"], v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}}}); err != nil || got != nil {
		t.Errorf("off = %+v, %v; want none", got, err)
	}
}
