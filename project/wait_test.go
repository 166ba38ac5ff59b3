package project

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

// ctr fabricates a container snapshot: its status, exit code and health
// (empty: none recorded), with or without a healthcheck.
func ctr(name string, status runtime.Status, exit int, health runtime.HealthStatus, probe bool) *runtime.Container {
	c := &runtime.Container{Spec: runtime.Spec{Name: name}, State: runtime.State{Status: status, ExitCode: exit}}
	if probe {
		c.Spec.Healthcheck = &runtime.Healthcheck{Args: []string{"true"}}
	}
	if health != "" {
		c.State.Health = &runtime.Health{Status: health}
	}
	return c
}

func TestReadiness(t *testing.T) {
	unhealthy := ctr("p-db-1", runtime.Running, 0, runtime.Unhealthy, true)
	unhealthy.State.Health.Log = []runtime.HealthResult{{ExitCode: 1, Output: "no\nconnection  refused\n"}}
	tests := []struct {
		name    string
		c       *runtime.Container
		cond    condition
		ready   bool
		wantErr string
	}{
		{"healthy", ctr("p-db-1", runtime.Running, 0, runtime.Healthy, true), condHealthy, true, ""},
		{"starting", ctr("p-db-1", runtime.Running, 0, runtime.HealthStarting, true), condHealthy, false, ""},
		{"no verdict yet", ctr("p-db-1", runtime.Running, 0, "", true), condHealthy, false, ""},
		{"unhealthy", unhealthy, condHealthy, false, "p-db-1 is unhealthy (last probe: exit 1: no connection refused)"},
		{"restarting", ctr("p-db-1", runtime.Restarting, 1, runtime.Unhealthy, true), condHealthy, false, ""},
		{"exited while waited for health", ctr("p-db-1", runtime.Exited, 3, runtime.HealthStarting, true), condHealthy, false, "p-db-1 exited with code 3"},
		{"no healthcheck", ctr("p-db-1", runtime.Running, 0, "", false), condHealthy, false, "p-db-1 has no healthcheck configured"},
		{"dead", ctr("p-db-1", runtime.Dead, 0, "", true), condHealthy, false, "p-db-1 is dead"},
		{"never started", ctr("p-db-1", runtime.Created, 0, "", true), condHealthy, false, "p-db-1 was not started"},

		{"completed", ctr("p-init-1", runtime.Exited, 0, "", false), condCompleted, true, ""},
		{"still running", ctr("p-init-1", runtime.Running, 0, "", false), condCompleted, false, ""},
		{"failed", ctr("p-init-1", runtime.Exited, 3, "", false), condCompleted, false, "p-init-1 exited with code 3"},

		{"running without healthcheck", ctr("p-web-1", runtime.Running, 0, "", false), condRunningOrHealthy, true, ""},
		{"running, health starting", ctr("p-web-1", runtime.Running, 0, runtime.HealthStarting, true), condRunningOrHealthy, false, ""},
		{"running and healthy", ctr("p-web-1", runtime.Running, 0, runtime.Healthy, true), condRunningOrHealthy, true, ""},
		{"paused", ctr("p-web-1", runtime.Paused, 0, "", false), condRunningOrHealthy, false, ""},
		{"exited with 0 is not running", ctr("p-web-1", runtime.Exited, 0, "", false), condRunningOrHealthy, false, "p-web-1 exited with code 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready, err := readiness(tt.c, tt.cond)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || ready != tt.ready {
				t.Errorf("readiness = %v, %v; want %v", ready, err, tt.ready)
			}
		})
	}
}

// fakeStates plays a scripted sequence of snapshots per container: each
// Get returns the next one, and the last one from then on.
type fakeStates struct {
	mu     sync.Mutex
	script map[string][]*runtime.Container
	gets   map[string]int
}

var _ stateReader = (*fakeStates)(nil)

func (f *fakeStates) Get(name string) (*runtime.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list, ok := f.script[name]
	if !ok {
		return nil, runtime.ErrNotFound
	}
	if f.gets == nil {
		f.gets = map[string]int{}
	}
	i := min(f.gets[name], len(list)-1)
	f.gets[name]++
	return list[i], nil
}

func TestWaitReady(t *testing.T) {
	starting := ctr("p-db-1", runtime.Running, 0, runtime.HealthStarting, true)
	healthy := ctr("p-db-1", runtime.Running, 0, runtime.Healthy, true)
	unhealthy := ctr("p-db-1", runtime.Running, 0, runtime.Unhealthy, true)
	t.Run("becomes healthy", func(t *testing.T) {
		states := &fakeStates{script: map[string][]*runtime.Container{
			"p-db-1":   {starting, starting, healthy},
			"p-init-1": {ctr("p-init-1", runtime.Running, 0, "", false), ctr("p-init-1", runtime.Exited, 0, "", false)},
		}}
		var ready []string
		err := waitReady(context.Background(), states, []waitTarget{{"p-db-1", condHealthy}, {"p-init-1", condCompleted}},
			func(t waitTarget, _ *runtime.Container) { ready = append(ready, t.Name) })
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ready, " ") != "p-init-1 p-db-1" {
			t.Errorf("ready in order %q, want p-init-1 then p-db-1", ready)
		}
	})
	t.Run("becomes unhealthy", func(t *testing.T) {
		states := &fakeStates{script: map[string][]*runtime.Container{"p-db-1": {starting, unhealthy}}}
		err := waitReady(context.Background(), states, []waitTarget{{"p-db-1", condHealthy}}, nil)
		if err == nil || err.Error() != "p-db-1 is unhealthy" {
			t.Errorf("err = %v, want p-db-1 is unhealthy", err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		err := waitReady(context.Background(), &fakeStates{}, []waitTarget{{"p-db-1", condHealthy}}, nil)
		if err == nil || !strings.Contains(err.Error(), "p-db-1 is gone") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("timeout names what is not ready", func(t *testing.T) {
		states := &fakeStates{script: map[string][]*runtime.Container{
			"p-db-1":  {starting},
			"p-web-1": {ctr("p-web-1", runtime.Running, 0, "", false)},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*pollInterval)
		defer cancel()
		err := waitReady(ctx, states, []waitTarget{{"p-db-1", condRunningOrHealthy}, {"p-web-1", condRunningOrHealthy}}, nil)
		var nr *notReadyError
		if !errors.As(err, &nr) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a notReadyError of the deadline", err)
		}
		if got := strings.Join(nr.Pending, ", "); got != "p-db-1 (running, health: starting)" {
			t.Errorf("pending = %q", got)
		}
	})
}

// waitEngine is an Engine over fake states that records its events.
func waitEngine(states stateReader) (*Engine, *[]string) {
	var mu sync.Mutex
	var events []string
	e := &Engine{states: states, events: func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, strings.Join(strings.Fields(string(ev.Kind)+" "+ev.Object+" "+ev.Text), " "))
	}}
	return e, &events
}

func dependsProject(deps types.DependsOnConfig, extra ...types.ServiceConfig) *types.Project {
	p := &types.Project{Name: "p", Services: types.Services{
		"web": dependsOn("web", deps),
		"db":  service("db", nil),
	}}
	for _, s := range extra {
		p.Services[s.Name] = s
	}
	return p
}

func TestWaitDependencies(t *testing.T) {
	healthy := ctr("p-db-1", runtime.Running, 0, runtime.Healthy, true)
	unhealthy := ctr("p-db-1", runtime.Running, 0, runtime.Unhealthy, true)
	exited := ctr("p-db-1", runtime.Exited, 3, "", false)
	tests := []struct {
		name    string
		cfg     types.ServiceDependency
		db      *runtime.Container
		want    map[string]bool
		wantErr string
		events  string
	}{
		{
			name:   "healthy",
			cfg:    types.ServiceDependency{Condition: types.ServiceConditionHealthy, Required: true},
			db:     healthy,
			events: "Waiting Container p-db-1|Healthy Container p-db-1",
		},
		{
			name:    "unhealthy fails naming both services",
			cfg:     types.ServiceDependency{Condition: types.ServiceConditionHealthy, Required: true},
			db:      unhealthy,
			wantErr: `service "web" depends on "db" being healthy: p-db-1 is unhealthy`,
		},
		{
			name:    "no healthcheck",
			cfg:     types.ServiceDependency{Condition: types.ServiceConditionHealthy, Required: true},
			db:      ctr("p-db-1", runtime.Running, 0, "", false),
			wantErr: `service "web" depends on "db" being healthy: p-db-1 has no healthcheck configured`,
		},
		{
			name:    "completed with an error",
			cfg:     types.ServiceDependency{Condition: types.ServiceConditionCompletedSuccessfully, Required: true},
			db:      exited,
			wantErr: `service "web" depends on "db" completing successfully: p-db-1 exited with code 3`,
		},
		{
			name:   "completed",
			cfg:    types.ServiceDependency{Condition: types.ServiceConditionCompletedSuccessfully, Required: true},
			db:     ctr("p-db-1", runtime.Exited, 0, "", false),
			events: "Waiting Container p-db-1|Exited Container p-db-1",
		},
		{
			name:   "an optional dependency that fails is a warning",
			cfg:    types.ServiceDependency{Condition: types.ServiceConditionHealthy},
			db:     unhealthy,
			events: `Waiting Container p-db-1|Warning service "web" depends on "db" being healthy: p-db-1 is unhealthy: optional dependency, starting "web" anyway`,
		},
		{
			name: "started needs no wait",
			cfg:  types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true},
			db:   exited,
		},
		{
			name: "a dependency this up does not bring up is not waited for",
			cfg:  types.ServiceDependency{Condition: types.ServiceConditionHealthy, Required: true},
			db:   unhealthy,
			want: map[string]bool{"web": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := dependsProject(types.DependsOnConfig{"db": tt.cfg})
			e, events := waitEngine(&fakeStates{script: map[string][]*runtime.Container{"p-db-1": {tt.db}}})
			want := tt.want
			if want == nil {
				want = map[string]bool{"web": true, "db": true}
			}
			err := e.waitDependencies(context.Background(), p, "web", want)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(*events, "|"); got != tt.events {
				t.Errorf("events = %q\nwant     %q", got, tt.events)
			}
		})
	}
}

func TestWaitDependenciesOptionalMissing(t *testing.T) {
	p := dependsProject(types.DependsOnConfig{"cache": {Condition: types.ServiceConditionHealthy}})
	e, events := waitEngine(&fakeStates{})
	if err := e.waitDependencies(context.Background(), p, "web", map[string]bool{"web": true}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(*events, "|"); !strings.Contains(got, `optional dependency "cache" is not in the project`) {
		t.Errorf("events = %q, want a warning about cache", got)
	}
}

func TestWaitDependenciesCancelled(t *testing.T) {
	p := dependsProject(types.DependsOnConfig{"db": {Condition: types.ServiceConditionHealthy, Required: true}})
	e, _ := waitEngine(&fakeStates{script: map[string][]*runtime.Container{"p-db-1": {ctr("p-db-1", runtime.Running, 0, runtime.HealthStarting, true)}}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*pollInterval, cancel)
	err := e.waitDependencies(ctx, p, "web", map[string]bool{"web": true, "db": true})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestWaitReadyEngine(t *testing.T) {
	p := dependsProject(types.DependsOnConfig{"init": {Condition: types.ServiceConditionCompletedSuccessfully, Required: true}},
		service("init", nil))
	states := &fakeStates{script: map[string][]*runtime.Container{
		"p-web-1":  {ctr("p-web-1", runtime.Running, 0, "", false)},
		"p-db-1":   {ctr("p-db-1", runtime.Running, 0, runtime.HealthStarting, true), ctr("p-db-1", runtime.Running, 0, runtime.Healthy, true)},
		"p-init-1": {ctr("p-init-1", runtime.Exited, 0, "", false)},
	}}
	e, events := waitEngine(states)
	if err := e.WaitReady(context.Background(), p, UpOptions{}, time.Second); err != nil {
		t.Fatal(err)
	}
	want := "Waiting Container p-db-1|Waiting Container p-init-1|Waiting Container p-web-1|" +
		"Exited Container p-init-1|Running Container p-web-1|Healthy Container p-db-1"
	if got := strings.Join(*events, "|"); got != want {
		t.Errorf("events = %q\nwant     %q", got, want)
	}

	// An exit that no one asked for fails the wait; a timeout names what
	// is not ready.
	states.script["p-web-1"] = []*runtime.Container{ctr("p-web-1", runtime.Exited, 2, "", false)}
	states.gets = nil
	err := e.WaitReady(context.Background(), p, UpOptions{}, time.Second)
	if err == nil || err.Error() != "application not healthy: p-web-1 exited with code 2" {
		t.Errorf("err = %v", err)
	}
	states.script["p-web-1"] = []*runtime.Container{ctr("p-web-1", runtime.Restarting, 2, "", false)}
	states.gets = nil
	err = e.WaitReady(context.Background(), p, UpOptions{Services: []string{"web"}}, 3*pollInterval)
	if err == nil || !strings.HasPrefix(err.Error(), "application not healthy after 75ms: p-web-1 (restarting)") {
		t.Errorf("err = %v", err)
	}
}

func TestCheckHealthDependencies(t *testing.T) {
	p := dependsProject(types.DependsOnConfig{"db": {Condition: types.ServiceConditionHealthy, Required: true}})
	all := map[string]bool{"web": true, "db": true}
	err := checkHealthDependencies(p, all, map[string]*runtime.Healthcheck{})
	if err == nil || !strings.Contains(err.Error(), `service "web" depends on "db" being healthy, but "db" has no healthcheck`) {
		t.Errorf("err = %v", err)
	}
	if err := checkHealthDependencies(p, all, map[string]*runtime.Healthcheck{"db": {Args: []string{"true"}}}); err != nil {
		t.Errorf("with a healthcheck: %v", err)
	}
	if err := checkHealthDependencies(p, map[string]bool{"web": true}, nil); err != nil {
		t.Errorf("--no-deps: %v", err)
	}
}

func TestWithRestartDependents(t *testing.T) {
	p := &types.Project{Services: types.Services{
		"db":     service("db", nil),
		"api":    dependsOn("api", types.DependsOnConfig{"db": {Restart: true}}),
		"web":    dependsOn("web", types.DependsOnConfig{"api": {Restart: true}}),
		"worker": dependsOn("worker", types.DependsOnConfig{"db": {Restart: false}}),
	}}
	if got := strings.Join(withRestartDependents(p, []string{"db"}), " "); got != "api db web" {
		t.Errorf("restart db = %q, want api db web", got)
	}
	if got := strings.Join(withRestartDependents(p, []string{"worker"}), " "); got != "worker" {
		t.Errorf("restart worker = %q", got)
	}
}

func dependsOn(name string, deps types.DependsOnConfig) types.ServiceConfig {
	return service(name, func(s *types.ServiceConfig) { s.DependsOn = deps })
}
