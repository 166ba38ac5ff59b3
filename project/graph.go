package project

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Direction says which way Walk goes through the graph.
type Direction int

const (
	// Forward visits a service after all its dependencies (up, start).
	Forward Direction = iota
	// Reverse visits a service after all its dependents (down, stop).
	Reverse
)

// Graph is the services of a project as a DAG of depends_on.
type Graph struct {
	names      []string            // sorted
	deps       map[string][]string // service -> the services it depends on, sorted
	dependents map[string][]string // service -> the services depending on it, sorted
}

// NewGraph builds the graph of the project's enabled services. A dependency
// on a service that is not declared, or that its profiles disable while the
// dependency is required, is an error; an optional one (required: false) on a
// service that is not there is dropped, as compose does. Cycles are errors
// that show the cycle.
func NewGraph(p *types.Project) (*Graph, error) {
	g := &Graph{
		deps:       map[string][]string{},
		dependents: map[string][]string{},
	}
	for name := range p.Services {
		g.names = append(g.names, name)
	}
	sort.Strings(g.names)
	for _, name := range g.names {
		s := p.Services[name]
		var deps []string
		for dep, cfg := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok {
				if !cfg.Required {
					continue
				}
				return nil, fmt.Errorf("service %q depends on %w %q", name, ErrUndefinedService, dep)
			}
			deps = append(deps, dep)
		}
		sort.Strings(deps)
		g.deps[name] = deps
		for _, dep := range deps {
			g.dependents[dep] = append(g.dependents[dep], name)
		}
	}
	for _, name := range g.names {
		sort.Strings(g.dependents[name])
	}
	if cycle := g.findCycle(); cycle != nil {
		return nil, fmt.Errorf("%w: %s", ErrDependencyCycle, strings.Join(cycle, " -> "))
	}
	return g, nil
}

// findCycle returns the first cycle found, exploring services and their
// dependencies by name so that the message is the same on every run (and
// the same as compose's): [a b a] for a -> b -> a.
func (g *Graph) findCycle() []string {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(name string) []string
	visit = func(name string) []string {
		state[name] = onPath
		path = append(path, name)
		for _, dep := range g.deps[name] {
			switch state[dep] {
			case onPath:
				i := slices.Index(path, dep)
				return append(slices.Clone(path[i:]), dep)
			case unseen:
				if c := visit(dep); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		return nil
	}
	for _, name := range g.names {
		if state[name] == unseen {
			if c := visit(name); c != nil {
				return c
			}
		}
	}
	return nil
}

// Order returns the services in a stable topological order: dependencies
// first, and among services that are ready at the same time, by name.
func (g *Graph) Order() []string {
	pending := map[string]int{}
	var ready []string
	for _, name := range g.names {
		pending[name] = len(g.deps[name])
		if pending[name] == 0 {
			ready = append(ready, name)
		}
	}
	order := make([]string, 0, len(g.names))
	for len(ready) > 0 {
		name := ready[0]
		ready = ready[1:]
		order = append(order, name)
		for _, next := range g.dependents[name] {
			pending[next]--
			if pending[next] == 0 {
				ready = insertSorted(ready, next)
			}
		}
	}
	return order
}

// WithDependencies returns the named services and everything they depend
// on, transitively, in Order. An unknown name is an ErrNoSuchService.
func (g *Graph) WithDependencies(services []string) ([]string, error) {
	want := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		if want[name] {
			return
		}
		want[name] = true
		for _, dep := range g.deps[name] {
			add(dep)
		}
	}
	for _, name := range services {
		if _, ok := g.deps[name]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchService, name)
		}
		add(name)
	}
	var out []string
	for _, name := range g.Order() {
		if want[name] {
			out = append(out, name)
		}
	}
	return out, nil
}

// Walk calls fn for every service, each only after all its dependencies
// (Forward) or all its dependents (Reverse) have returned nil. Services
// that are ready together run in parallel, at most limit at once (limit < 1
// means no limit), and are started in name order. The first error cancels
// the context passed to the running calls, no further service is started,
// and Walk returns that error as fn returned it once every running call has
// returned. If ctx ends first, Walk returns ctx.Err().
func (g *Graph) Walk(ctx context.Context, dir Direction, limit int, fn func(ctx context.Context, service string) error) error {
	before, after := g.deps, g.dependents
	if dir == Reverse {
		before, after = g.dependents, g.deps
	}
	if limit < 1 {
		limit = len(g.names)
	}
	walkCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		name string
		err  error
	}
	// Buffered for every service, so that a call returning never blocks on
	// the loop below, whatever it is doing.
	results := make(chan result, len(g.names))
	pending := map[string]int{}
	var ready []string
	for _, name := range g.names {
		pending[name] = len(before[name])
		if pending[name] == 0 {
			ready = append(ready, name)
		}
	}
	running, finished := 0, 0
	var firstErr error
	for {
		for firstErr == nil && walkCtx.Err() == nil && running < limit && len(ready) > 0 {
			name := ready[0]
			ready = ready[1:]
			running++
			go func() {
				results <- result{name, fn(walkCtx, name)}
			}()
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
				cancel()
			}
			continue
		}
		finished++
		for _, next := range after[r.name] {
			pending[next]--
			if pending[next] == 0 {
				ready = insertSorted(ready, next)
			}
		}
	}
	if firstErr != nil {
		return firstErr
	}
	if finished < len(g.names) {
		return ctx.Err()
	}
	return nil
}

func insertSorted(list []string, s string) []string {
	i, _ := slices.BinarySearch(list, s)
	return slices.Insert(list, i, s)
}
