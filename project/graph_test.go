package project

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// graphProject makes a project from "service: dependencies" pairs.
func graphProject(deps map[string][]string) *types.Project {
	p := &types.Project{Name: "test", Services: types.Services{}}
	for name, ds := range deps {
		s := types.ServiceConfig{Name: name}
		s.Image = "img"
		if len(ds) > 0 {
			s.DependsOn = types.DependsOnConfig{}
			for _, d := range ds {
				s.DependsOn[d] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
			}
		}
		p.Services[name] = s
	}
	return p
}

func mustGraph(t *testing.T, deps map[string][]string) *Graph {
	t.Helper()
	g, err := NewGraph(graphProject(deps))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var diamond = map[string][]string{
	"web":   {"api", "cache"},
	"api":   {"db"},
	"cache": {"db"},
	"db":    nil,
}

func TestNewGraphErrors(t *testing.T) {
	tests := []struct {
		name string
		deps map[string][]string
		is   error
		want string
	}{
		{"self", map[string][]string{"a": {"a"}}, ErrDependencyCycle, "dependency cycle detected: a -> a"},
		{"two", map[string][]string{"a": {"b"}, "b": {"a"}}, ErrDependencyCycle, "dependency cycle detected: a -> b -> a"},
		{"three", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, ErrDependencyCycle, "dependency cycle detected: a -> b -> c -> a"},
		{"below the root", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"b"}}, ErrDependencyCycle, "dependency cycle detected: b -> c -> b"},
		{"undefined", map[string][]string{"web": {"nosuch"}}, ErrUndefinedService, `service "web" depends on undefined service "nosuch"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewGraph(graphProject(tt.deps))
			if !errors.Is(err, tt.is) || err.Error() != tt.want {
				t.Errorf("err = %v, want %q (%v)", err, tt.want, tt.is)
			}
		})
	}
}

func TestNewGraphOptionalDependency(t *testing.T) {
	p := graphProject(map[string][]string{"web": nil})
	web := p.Services["web"]
	web.DependsOn = types.DependsOnConfig{"debug": {Condition: types.ServiceConditionStarted, Required: false}}
	p.Services["web"] = web
	g, err := NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Order(); !slices.Equal(got, []string{"web"}) {
		t.Errorf("Order = %v", got)
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name string
		deps map[string][]string
		want []string
	}{
		{"independent by name", map[string][]string{"c": nil, "a": nil, "b": nil}, []string{"a", "b", "c"}},
		{"chain", map[string][]string{"a": {"b"}, "b": {"c"}, "c": nil}, []string{"c", "b", "a"}},
		{"diamond", diamond, []string{"db", "api", "cache", "web"}},
		{"ready later sorts in", map[string][]string{"z": nil, "b": {"z"}, "y": nil}, []string{"y", "z", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustGraph(t, tt.deps).Order(); !slices.Equal(got, tt.want) {
				t.Errorf("Order = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWithDependencies(t *testing.T) {
	g := mustGraph(t, map[string][]string{"web": {"api"}, "api": {"db"}, "db": nil, "other": nil, "cache": nil})
	tests := []struct {
		in, want []string
	}{
		{[]string{"web"}, []string{"db", "api", "web"}},
		{[]string{"api", "cache"}, []string{"cache", "db", "api"}},
		{[]string{"db"}, []string{"db"}},
		{nil, nil},
	}
	for _, tt := range tests {
		got, err := g.WithDependencies(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("WithDependencies(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if _, err := g.WithDependencies([]string{"web", "nosuch"}); !errors.Is(err, ErrNoSuchService) || err.Error() != "no such service: nosuch" {
		t.Errorf("err = %v", err)
	}
}

// recorder is a Walk callback that records when each service started and
// finished and how many ran at once; block holds services until released.
type recorder struct {
	mu          sync.Mutex
	events      []string
	running     int
	maxRunning  int
	fail        map[string]error
	block       map[string]chan struct{}
	sawCanceled map[string]bool
}

func (r *recorder) fn(ctx context.Context, name string) error {
	r.mu.Lock()
	r.events = append(r.events, "start "+name)
	r.running++
	r.maxRunning = max(r.maxRunning, r.running)
	wait := r.block[name]
	r.mu.Unlock()

	var err error
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			err = ctx.Err()
			r.mu.Lock()
			r.sawCanceled[name] = true
			r.mu.Unlock()
		}
	}
	if e := r.fail[name]; e != nil {
		err = e
	}

	r.mu.Lock()
	r.events = append(r.events, "end "+name)
	r.running--
	r.mu.Unlock()
	return err
}

func (r *recorder) index(event string) int { return slices.Index(r.events, event) }

func TestWalkOrder(t *testing.T) {
	for _, dir := range []Direction{Forward, Reverse} {
		for _, limit := range []int{0, 1, 2} {
			t.Run(fmt.Sprintf("dir=%d limit=%d", dir, limit), func(t *testing.T) {
				g := mustGraph(t, diamond)
				r := &recorder{}
				if err := g.Walk(context.Background(), dir, limit, r.fn); err != nil {
					t.Fatal(err)
				}
				if len(r.events) != 8 {
					t.Fatalf("events = %v, want every service once", r.events)
				}
				if limit > 0 && r.maxRunning > limit {
					t.Errorf("%d ran at once, limit %d", r.maxRunning, limit)
				}
				for svc, deps := range diamond {
					for _, dep := range deps {
						first, then := dep, svc
						if dir == Reverse {
							first, then = svc, dep
						}
						if r.index("end "+first) > r.index("start "+then) {
							t.Errorf("%s started before %s ended: %v", then, first, r.events)
						}
					}
				}
			})
		}
	}
}

func TestWalkRunsIndependentServicesTogether(t *testing.T) {
	g := mustGraph(t, map[string][]string{"a": nil, "b": nil, "c": nil, "d": {"a", "b", "c"}})
	release := make(chan struct{})
	r := &recorder{block: map[string]chan struct{}{"a": release, "b": release, "c": release}, sawCanceled: map[string]bool{}}
	done := make(chan error, 1)
	go func() { done <- g.Walk(context.Background(), Forward, 2, r.fn) }()

	// Two of a, b, c start and hold their slots; the third must wait.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		running := r.running
		r.mu.Unlock()
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never 2 running at once: %v", r.events)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.maxRunning != 2 {
		t.Errorf("max running = %d, want the limit, 2", r.maxRunning)
	}
	first := slices.Sorted(slices.Values(r.events[:2]))
	if !slices.Equal(first, []string{"start a", "start b"}) {
		t.Errorf("events = %v, want a and b started first (by name)", r.events)
	}
}

func TestWalkStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	// db fails while cache is still running: cache sees its context
	// canceled, and neither api nor web starts.
	g := mustGraph(t, map[string][]string{"web": {"api", "cache"}, "api": {"db"}, "db": nil, "cache": nil})
	r := &recorder{
		fail:        map[string]error{"db": boom},
		block:       map[string]chan struct{}{"cache": make(chan struct{})},
		sawCanceled: map[string]bool{},
	}
	err := g.Walk(context.Background(), Forward, 0, r.fn)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	for _, name := range []string{"api", "web"} {
		if r.index("start "+name) >= 0 {
			t.Errorf("%s started after db failed: %v", name, r.events)
		}
	}
	if !r.sawCanceled["cache"] {
		t.Errorf("cache did not see its context canceled: %v", r.events)
	}
	if r.running != 0 {
		t.Errorf("Walk returned with %d calls running", r.running)
	}
}

func TestWalkCanceled(t *testing.T) {
	g := mustGraph(t, map[string][]string{"a": nil, "b": {"a"}})
	ctx, cancel := context.WithCancel(context.Background())
	called := []string{}
	err := g.Walk(ctx, Forward, 1, func(_ context.Context, name string) error {
		called = append(called, name)
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if !slices.Equal(called, []string{"a"}) {
		t.Errorf("called = %v, want only a", called)
	}
}

func TestWalkEmpty(t *testing.T) {
	g := mustGraph(t, map[string][]string{})
	if err := g.Walk(context.Background(), Forward, 4, func(context.Context, string) error {
		t.Error("fn called on an empty graph")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
