package project

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

// DownOptions are the flags of `berth down`.
type DownOptions struct {
	RemoveOrphans bool
	// Volumes also removes the project's named volumes (not external ones).
	Volumes bool
	Timeout *time.Duration
}

// Down stops and removes the project's containers, dependents before their
// dependencies, then its networks, its nftables table and (with Volumes)
// its volumes. p may be nil when no compose file is at hand (`down -p
// NAME`): then every container of the project goes, in reverse name order.
//
// It goes on to the end whatever fails (teardown.go): the error lists what
// is left; what could only not be recorded (a full disk) is warned of.
func (e *Engine) Down(ctx context.Context, name string, p *types.Project, opts DownOptions) error {
	unlock, err := e.lockProject(name)
	if err != nil {
		return err
	}
	defer unlock()
	cs, err := e.projectContainers(name)
	if err != nil {
		return err
	}
	var graph *Graph
	if p != nil {
		if graph, err = NewGraph(p); err != nil {
			return inFile(p, err)
		}
	}
	byService := map[string][]*runtime.Container{}
	var orphaned []*runtime.Container
	for _, c := range cs {
		svc := c.Spec.Labels[LabelService]
		if p != nil {
			if _, ok := p.Services[svc]; !ok {
				orphaned = append(orphaned, c)
				continue
			}
		}
		byService[svc] = append(byService[svc], c)
	}
	td := &teardown{}
	if len(orphaned) > 0 {
		if opts.RemoveOrphans {
			e.takeDownAll(ctx, orphaned, opts.Timeout, td)
		} else {
			var names []string
			for _, c := range orphaned {
				names = append(names, c.Spec.Name)
			}
			e.warn(fmt.Sprintf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(names, ", ")))
		}
	}
	if graph != nil {
		// A service whose container cannot be removed does not keep its
		// dependencies: down removes what it can.
		td.fail(graph.Walk(ctx, Reverse, parallelism, func(ctx context.Context, svc string) error {
			e.takeDownAll(ctx, byService[svc], opts.Timeout, td)
			return nil
		}))
	} else {
		var rest []*runtime.Container
		for _, list := range byService {
			rest = append(rest, list...)
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].Spec.Name > rest[j].Spec.Name })
		e.takeDownAll(ctx, rest, opts.Timeout, td)
	}
	// The project's networks go once no container uses them (an external
	// network is another project's), and its table with them; the
	// addresses its containers held on networks that stay are given back.
	td.fail(e.removeNetworks(name, nil))
	if p != nil {
		e.removeLostBridges(p, td)
	}
	e.releaseLeft(name, td)
	td.fail(e.applyRules(name))
	if opts.Volumes {
		td.fail(e.removeVolumes(name, p))
	}
	return e.reportTeardown(td)
}

// removeVolumes removes the project's volumes: the named ones its file
// declares (not external) and its anonymous ones; without a file, every
// volume labelled with the project.
func (e *Engine) removeVolumes(project string, p *types.Project) error {
	vols, err := e.volumes.List()
	if err != nil {
		return err
	}
	var names []string
	for _, v := range vols {
		if v.Labels[LabelProject] == project && (p == nil || v.Labels[LabelAnonymous] != "") {
			names = append(names, v.Name)
		}
	}
	if p != nil {
		for _, v := range p.Volumes {
			if !v.External {
				names = append(names, v.Name)
			}
		}
	}
	sort.Strings(names)
	names = slices.Compact(names)
	for _, n := range names {
		if _, err := e.volumes.Get(n); errors.Is(err, runtime.ErrNotFound) {
			continue
		}
		obj := fmt.Sprintf("Volume %q", n)
		e.emit(Removing, obj, "")
		if err := e.volumes.Remove(n); err != nil {
			return fmt.Errorf("remove volume %s: %w", n, err)
		}
		e.emit(Removed, obj, "")
	}
	return nil
}

func (e *Engine) removeAll(ctx context.Context, cs []*runtime.Container, timeout *time.Duration) error {
	var errs []error
	for _, c := range cs {
		if err := e.removeContainer(ctx, c.Spec.Name, timeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// servicesContainers groups the project's containers of the selected services.
func (e *Engine) servicesContainers(p *types.Project, services []string) (map[string][]*runtime.Container, error) {
	set, err := selected(p, services)
	if err != nil {
		return nil, err
	}
	cs, err := e.projectContainers(p.Name)
	if err != nil {
		return nil, err
	}
	out := map[string][]*runtime.Container{}
	for _, c := range cs {
		if svc := c.Spec.Labels[LabelService]; set[svc] {
			out[svc] = append(out[svc], c)
		}
	}
	return out, nil
}

// Stop stops the selected services' containers, dependents first.
func (e *Engine) Stop(ctx context.Context, p *types.Project, services []string, timeout *time.Duration) error {
	unlock, err := e.lockProject(p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := e.stopServices(ctx, p, services, timeout); err != nil {
		return err
	}
	return e.applyRules(p.Name)
}

func (e *Engine) stopServices(ctx context.Context, p *types.Project, services []string, timeout *time.Duration) error {
	byService, err := e.servicesContainers(p, services)
	if err != nil {
		return err
	}
	graph, err := NewGraph(p)
	if err != nil {
		return inFile(p, err)
	}
	return graph.Walk(ctx, Reverse, parallelism, func(ctx context.Context, svc string) error {
		var errs []error
		for _, c := range byService[svc] {
			if c.State.Status == runtime.Dead {
				e.warn(deadWarning(c))
			}
			errs = append(errs, e.stopContainer(ctx, c, timeout))
		}
		return errors.Join(errs...)
	})
}

// Start starts the selected services' existing containers, dependencies first.
func (e *Engine) Start(ctx context.Context, p *types.Project, services []string) error {
	unlock, err := e.lockProject(p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := e.startServices(ctx, p, services); err != nil {
		return err
	}
	return e.applyRules(p.Name)
}

func (e *Engine) startServices(ctx context.Context, p *types.Project, services []string) error {
	byService, err := e.servicesContainers(p, services)
	if err != nil {
		return err
	}
	total := 0
	for _, list := range byService {
		total += len(list)
	}
	if total == 0 {
		return fmt.Errorf("%w to start: run 'berth up' first", ErrNoContainers)
	}
	graph, err := NewGraph(p)
	if err != nil {
		return inFile(p, err)
	}
	// The dependencies this call starts are waited for as depends_on says.
	want := map[string]bool{}
	for svc := range byService {
		want[svc] = true
	}
	return graph.Walk(ctx, Forward, parallelism, func(ctx context.Context, svc string) error {
		if !slices.ContainsFunc(byService[svc], func(c *runtime.Container) bool { return !live(c) }) {
			return nil
		}
		if err := e.waitDependencies(ctx, p, svc, want); err != nil {
			return inFile(p, err)
		}
		for _, c := range byService[svc] {
			if live(c) {
				continue
			}
			if err := e.startContainer(ctx, c.Spec.Name); err != nil {
				return inFile(p, serviceError(svc, err))
			}
		}
		return nil
	})
}

// Restart stops then starts the selected services' containers, and those
// of the services that depend on them with restart: true, as docker compose
// does.
func (e *Engine) Restart(ctx context.Context, p *types.Project, services []string, timeout *time.Duration) error {
	unlock, err := e.lockProject(p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if len(services) > 0 {
		if _, err := selected(p, services); err != nil {
			return err
		}
		services = withRestartDependents(p, services)
	}
	if err := e.stopServices(ctx, p, services, timeout); err != nil {
		return err
	}
	if err := e.startServices(ctx, p, services); err != nil {
		return err
	}
	return e.applyRules(p.Name)
}

// RemoveOptions are the flags of `berth rm`.
type RemoveOptions struct {
	// Stop stops running containers first; otherwise running ones are left
	// alone (and reported).
	Stop    bool
	Timeout *time.Duration
}

// Removable lists the selected services' containers that Remove would
// remove, so that the CLI can ask before.
func (e *Engine) Removable(p *types.Project, services []string, opts RemoveOptions) ([]*runtime.Container, error) {
	byService, err := e.servicesContainers(p, services)
	if err != nil {
		return nil, err
	}
	var out []*runtime.Container
	for _, list := range byService {
		for _, c := range list {
			if !live(c) || opts.Stop {
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, nil
}

// Remove removes the given containers of project p.
func (e *Engine) Remove(ctx context.Context, p *types.Project, cs []*runtime.Container, opts RemoveOptions) error {
	unlock, err := e.lockProject(p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := e.removeAll(ctx, cs, opts.Timeout); err != nil {
		return err
	}
	return e.applyRules(p.Name)
}

// Containers lists the project's containers of the given services (all when
// none is named); with all false only running ones.
func (e *Engine) Containers(projectName string, services []string, all bool) ([]*runtime.Container, error) {
	cs, err := e.projectContainers(projectName)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, s := range services {
		want[s] = true
	}
	var out []*runtime.Container
	for _, c := range cs {
		if len(want) > 0 && !want[c.Spec.Labels[LabelService]] {
			continue
		}
		if !all && !live(c) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// ProjectSummary is one project as `berth ls` shows it.
type ProjectSummary struct {
	Name string `json:"Name"`
	// Status counts containers by status, as docker compose: "running(2), exited(1)".
	Status      string `json:"Status"`
	ConfigFiles string `json:"ConfigFiles"`
	Running     int    `json:"-"`
}

// Projects summarises every project that has containers on this host.
func (e *Engine) Projects() ([]ProjectSummary, error) {
	cs, err := e.runtime.List()
	if err != nil {
		return nil, err
	}
	counts := map[string]map[runtime.Status]int{}
	files := map[string]string{}
	for _, c := range cs {
		name := c.Spec.Labels[LabelProject]
		if name == "" {
			continue
		}
		if counts[name] == nil {
			counts[name] = map[runtime.Status]int{}
		}
		counts[name][c.State.Status]++
		files[name] = c.Spec.Labels[LabelConfigFiles]
	}
	var out []ProjectSummary
	for name, byStatus := range counts {
		var parts []string
		for _, st := range []runtime.Status{runtime.Running, runtime.Restarting, runtime.Paused, runtime.Created, runtime.Exited, runtime.Dead} {
			if n := byStatus[st]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s(%d)", st, n))
			}
		}
		out = append(out, ProjectSummary{Name: name, Status: strings.Join(parts, ", "), ConfigFiles: files[name], Running: byStatus[runtime.Running] + byStatus[runtime.Restarting] + byStatus[runtime.Paused]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
