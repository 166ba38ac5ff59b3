package project

import (
	"context"
	"fmt"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

// The conditions of depends_on, as docker compose applies them: a service
// starts once each dependency meets its condition. service_started needs no
// wait: the graph walk starts a service after its dependencies' start.

// dependencyCondition is the wait a depends_on condition asks for; false for
// service_started (and anything else), which needs none.
func dependencyCondition(cfg types.ServiceDependency) (condition, string, bool) {
	switch cfg.Condition {
	case types.ServiceConditionHealthy:
		return condHealthy, "being healthy", true
	case types.ServiceConditionCompletedSuccessfully:
		return condCompleted, "completing successfully", true
	}
	return 0, "", false
}

// serviceContainers are the names of a service's containers as the
// project wants them: <project>-<service>-1…scale.
func serviceContainers(p *types.Project, s types.ServiceConfig) []string {
	var names []string
	for n := 1; n <= s.GetScale(); n++ {
		names = append(names, containerName(p.Name, s, n))
	}
	return names
}

// waitDependencies waits until each dependency of service that this call
// brings up (want) meets its condition. A failed optional dependency
// (required: false) costs a warning; a failed required one is an error
// that names both services.
func (e *Engine) waitDependencies(ctx context.Context, p *types.Project, service string, want map[string]bool) error {
	s := p.Services[service]
	for _, dep := range sortedKeys(s.DependsOn) {
		cfg := s.DependsOn[dep]
		ds, ok := p.Services[dep]
		if !ok {
			// NewGraph refused a missing required one already.
			e.warn(fmt.Sprintf("service %q: optional dependency %q is not in the project (or not enabled by a profile): starting without it", service, dep))
			continue
		}
		cond, what, wait := dependencyCondition(cfg)
		if !wait || !want[dep] {
			continue // started by the walk, or not brought up by this call (--no-deps)
		}
		var targets []waitTarget
		for _, name := range serviceContainers(p, ds) {
			targets = append(targets, waitTarget{Name: name, Cond: cond})
			e.emit(Waiting, containerObject(name), "")
		}
		err := waitReady(ctx, e.states, targets, func(t waitTarget, c *runtime.Container) {
			if c.State.Status == runtime.Exited {
				e.emit(Exited, containerObject(t.Name), "")
			} else {
				e.emit(Healthy, containerObject(t.Name), "")
			}
		})
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("service %q depends on %q %s: %w", service, dep, what, err)
			if !cfg.Required {
				e.warn(fmt.Sprintf("%v: optional dependency, starting %q anyway", err, service))
				continue
			}
			return dependencyError{err}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkHealthDependencies refuses, before anything is created, a required
// service_healthy dependency on a service that has no healthcheck: it could
// never be met. health holds each wanted service's merged healthcheck.
func checkHealthDependencies(p *types.Project, want map[string]bool, health map[string]*runtime.Healthcheck) error {
	for _, name := range sortedKeys(want) {
		for _, dep := range sortedKeys(p.Services[name].DependsOn) {
			cfg := p.Services[name].DependsOn[dep]
			ds, ok := p.Services[dep]
			if cfg.Condition != types.ServiceConditionHealthy || !cfg.Required || !want[dep] || !ok || ds.GetScale() == 0 {
				continue
			}
			if health[dep] == nil {
				return fmt.Errorf("service %q depends on %q being healthy, but %q has no healthcheck: add one to %q or use condition: service_started", name, dep, dep, dep)
			}
		}
	}
	return nil
}

// restartWith maps each service to the dependencies it restarts with
// (depends_on with restart: true), sorted.
func restartWith(p *types.Project) map[string][]string {
	out := map[string][]string{}
	for name, s := range p.Services {
		for dep, cfg := range s.DependsOn {
			if _, ok := p.Services[dep]; ok && cfg.Restart {
				out[name] = append(out[name], dep)
			}
		}
		slices.Sort(out[name])
	}
	return out
}

// withRestartDependents adds to services, transitively, the services that
// depend on one of them with restart: true: `restart db` restarts them too,
// as docker compose does. The result is sorted.
func withRestartDependents(p *types.Project, services []string) []string {
	with := restartWith(p)
	set := map[string]bool{}
	var add func(string)
	add = func(name string) {
		if set[name] {
			return
		}
		set[name] = true
		for _, other := range sortedKeys(with) {
			if slices.Contains(with[other], name) {
				add(other)
			}
		}
	}
	for _, s := range services {
		add(s)
	}
	return sortedKeys(set)
}

// dependencyError is a dependency that did not meet its condition: the
// project ran into it, it is not a mistake in the file. As with docker
// compose, what the up started stays, so that `logs` and `ps` tell why.
type dependencyError struct{ error }

func (e dependencyError) Unwrap() error { return e.error }
