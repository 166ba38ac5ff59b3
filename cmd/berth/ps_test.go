package main

import (
	"testing"

	"github.com/berth-dev/berth/runtime"
)

func TestStatusText(t *testing.T) {
	probe := &runtime.Healthcheck{Args: []string{"true"}}
	tests := []struct {
		name       string
		hc         *runtime.Healthcheck
		st         runtime.State
		want, json string
	}{
		{"running", nil, runtime.State{Status: runtime.Running}, "running", ""},
		{"healthy", probe, runtime.State{Status: runtime.Running, Health: &runtime.Health{Status: runtime.Healthy}}, "running (healthy)", "healthy"},
		{"unhealthy", probe, runtime.State{Status: runtime.Running, Health: &runtime.Health{Status: runtime.Unhealthy}}, "running (unhealthy)", "unhealthy"},
		{"no verdict yet", probe, runtime.State{Status: runtime.Running}, "running (starting)", "starting"},
		{"exited with a health record", probe, runtime.State{Status: runtime.Exited, ExitCode: 2, Health: &runtime.Health{Status: runtime.Unhealthy}}, "exited (2)", ""},
		{"paused", probe, runtime.State{Status: runtime.Paused}, "paused", ""},
		{"restarting", nil, runtime.State{Status: runtime.Restarting, ExitCode: 1}, "restarting (1)", ""},
		{"killed", nil, runtime.State{Status: runtime.Exited, ExitCode: 137}, "exited (137)", ""},
		{"dead says why", probe, runtime.State{Status: runtime.Dead, Error: "state.json: unexpected end of JSON input"}, "dead (state.json: unexpected end of JSON input)", ""},
		{"dead", nil, runtime.State{Status: runtime.Dead}, "dead", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := &runtime.Container{Spec: runtime.Spec{Healthcheck: tt.hc}, State: tt.st}
			if got := statusText(ct); got != tt.want {
				t.Errorf("statusText = %q, want %q", got, tt.want)
			}
			if got := health(ct); got != tt.json {
				t.Errorf("health = %q, want %q", got, tt.json)
			}
		})
	}
}
