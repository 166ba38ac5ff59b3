package project

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
)

// RunOptions are the flags of `berth run`.
type RunOptions struct {
	Service string
	// Command replaces the service's command when not nil.
	Command []string
	// Entrypoint replaces the service's entrypoint when not nil.
	Entrypoint []string
	// Env adds KEY=VALUE variables.
	Env []string
	// Publish are extra ports ("8080:80"); ServicePorts publishes the
	// service's own, which run leaves out by default, as docker compose.
	Publish      []string
	ServicePorts bool
	NoDeps       bool
	// Name replaces the generated container name.
	Name string
	// Pull is --pull, as UpOptions.Pull, and Build is --build, as
	// UpOptions.Build, for the service and its dependencies.
	Pull  string
	Build bool
	// CapAdd and CapDrop add to the service's cap_add and cap_drop.
	CapAdd, CapDrop []string
}

// Run creates and starts a one-off container of a service (its dependencies
// first, unless NoDeps), labelled com.docker.compose.oneoff=True, and
// returns its name. The caller follows its output and removes it (--rm).
func (e *Engine) Run(ctx context.Context, p *types.Project, opts RunOptions) (string, error) {
	s, ok := p.Services[opts.Service]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNoSuchService, opts.Service)
	}
	// --cap-add and --cap-drop are checked with the service's own keys,
	// before anything is pulled or made.
	s.CapAdd = append(slices.Clone(s.CapAdd), opts.CapAdd...)
	s.CapDrop = append(slices.Clone(s.CapDrop), opts.CapDrop...)
	checked := *p
	checked.Services = maps.Clone(p.Services)
	checked.Services[opts.Service] = s
	if err := e.checkServices(&checked, []string{opts.Service}); err != nil {
		return "", err
	}
	if err := e.ensureImages(ctx, p, []string{opts.Service}, imageFlags{Pull: opts.Pull, Build: opts.Build}); err != nil {
		return "", err
	}
	if !opts.NoDeps {
		graph, err := NewGraph(p)
		if err != nil {
			return "", inFile(p, err)
		}
		deps, err := graph.WithDependencies([]string{opts.Service})
		if err != nil {
			return "", inFile(p, err)
		}
		deps = slices.DeleteFunc(deps, func(d string) bool { return d == opts.Service })
		if len(deps) > 0 {
			if err := e.Up(ctx, p, UpOptions{Services: deps, Pull: opts.Pull, Build: opts.Build}); err != nil {
				return "", err
			}
			// The one-off starts once its dependencies meet their
			// conditions, as a service's container does.
			want := map[string]bool{}
			for _, d := range deps {
				want[d] = true
			}
			if err := e.waitDependencies(ctx, p, opts.Service, want); err != nil {
				return "", inFile(p, err)
			}
		}
	}
	unlock, err := e.lockProject(p.Name)
	if err != nil {
		return "", err
	}
	defer unlock()

	if opts.Command != nil {
		s.Command = opts.Command
	}
	if opts.Entrypoint != nil {
		s.Entrypoint = opts.Entrypoint
	}
	if len(opts.Env) > 0 {
		env := types.NewMappingWithEquals(opts.Env)
		if s.Environment == nil {
			s.Environment = types.MappingWithEquals{}
		}
		for k, v := range env {
			s.Environment[k] = v
		}
	}
	if !opts.ServicePorts {
		s.Ports = nil
	}
	for _, spec := range opts.Publish {
		ports, err := types.ParsePortConfig(spec)
		if err != nil {
			return "", fmt.Errorf("--publish %q: %w", spec, err)
		}
		s.Ports = append(s.Ports, ports...)
	}
	p.Services[opts.Service] = s

	nets, svcNets, err := planNetworks(p)
	if err != nil {
		return "", inFile(p, err)
	}
	ref := imageName(p, s)
	if ref == "" {
		return "", inFile(p, serviceError(s.Name, errNoImage))
	}
	img, err := e.images.Resolve(ref)
	if errors.Is(err, image.ErrNotFound) {
		// Pulled or built a moment ago, and removed since.
		return "", inFile(p, serviceError(s.Name, missingImage(p, s, ref)))
	} else if err != nil {
		return "", inFile(p, serviceError(s.Name, err))
	}
	layers, err := e.images.LayerDirs(img)
	if err != nil {
		return "", inFile(p, serviceError(s.Name, err))
	}
	want := map[string]bool{s.Name: true}
	volumes, err := e.ensureVolumes(p, want)
	if err != nil {
		return "", inFile(p, err)
	}
	recs, _, err := e.ensureNetworks(p, nets, svcNets, want)
	if err != nil {
		return "", inFile(p, err)
	}
	hash, err := ServiceHash(s)
	if err != nil {
		return "", err
	}
	id := newID()
	s.Image = ref // a built image's default name, after the hash as up's
	in := specInput{
		Project: p, Service: s, Number: 1, Image: img, Layers: layers, ConfigHash: hash,
		Volumes: volumes, ID: id, EventLog: e.EventLogPath(p.Name),
		Anonymous: func(i int) (volumeMount, error) { return e.anonymousVolume(p.Name, s.Name+"-run-"+id[:12], 1, i) },
	}
	spec, err := containerSpec(in)
	if err != nil {
		return "", inFile(p, serviceError(s.Name, err))
	}
	spec.Name = opts.Name
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("%s-%s-run-%s", p.Name, s.Name, id[:12])
	}
	spec.Labels[LabelOneoff] = "True"
	if err := e.containerNetwork(&spec, p, s.Name, svcNets[s.Name], recs); err != nil {
		return "", inFile(p, serviceError(s.Name, err))
	}
	if err := e.create(ctx, spec); err != nil {
		e.releaseContainer(spec.Name)
		return "", inFile(p, serviceError(s.Name, err))
	}
	if err := e.startContainer(ctx, spec.Name); err != nil {
		e.deleteContainer(context.WithoutCancel(ctx), spec.Name)
		return "", inFile(p, serviceError(s.Name, err))
	}
	if err := e.applyRules(p.Name); err != nil {
		return "", err
	}
	return spec.Name, nil
}

// RemoveContainer removes one container of project p by name (for run --rm).
func (e *Engine) RemoveContainer(ctx context.Context, p *types.Project, name string) error {
	unlock, err := e.lockProject(p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := e.removeContainer(ctx, name, nil); err != nil {
		return err
	}
	return e.applyRules(p.Name)
}

// oneoff reports whether c was made by `run`.
func oneoff(c *runtime.Container) bool { return c.Spec.Labels[LabelOneoff] == "True" }
