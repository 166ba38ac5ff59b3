package project

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
)

// UpOptions are the flags of `berth up` that shape the convergence.
type UpOptions struct {
	// Services limits up to these services and their dependencies.
	Services      []string
	ForceRecreate bool
	NoRecreate    bool
	RemoveOrphans bool
	// NoStart creates containers without starting them.
	NoStart bool
	// Timeout is the stop grace period for containers being replaced (nil:
	// each container's own).
	Timeout *time.Duration
	// NoDeps starts only the named Services, not their dependencies.
	NoDeps bool
	// Scale overrides the number of containers of services (--scale).
	Scale map[string]int
	// Pull is --pull: "always", "missing" or "never" replaces every
	// service's pull_policy; empty (or "policy") keeps each one's.
	Pull string
	// Build builds the images of the services with a build section first
	// (--build); NoBuild never builds, and a missing image is an error
	// (--no-build). Neither: what is missing, or of pull_policy build, is
	// built.
	Build, NoBuild bool
}

// Up converges the project: it creates, recreates, starts or removes
// containers so that each selected service runs as its file says, in
// dependency order, independent services in parallel. When it fails, every
// container it created is removed again (unless a dependency failed its
// condition: what ran stays, for its logs), so the project is never left
// half-made by this call.
func (e *Engine) Up(ctx context.Context, p *types.Project, opts UpOptions) (err error) {
	if err := e.checkServices(p, upChecked(p, opts)); err != nil {
		return err
	}
	// Images first, outside the project's lock: a pull or a build takes
	// its time and touches only the image store. A failed build creates
	// no container.
	if err := e.upImages(ctx, p, opts); err != nil {
		return err
	}
	unlock, err := e.lockProject(p.Name)
	if err != nil {
		return err
	}
	defer unlock()

	for name, n := range opts.Scale {
		s, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("--scale: %w: %s", ErrNoSuchService, name)
		}
		if n < 0 {
			return fmt.Errorf("--scale: %s=%d: a service cannot have fewer than 0 containers", name, n)
		}
		if n > 1 && s.ContainerName != "" {
			return fmt.Errorf("--scale: %s=%d: service %q has container_name %q, which only one container can have: remove container_name to run more", name, n, name, s.ContainerName)
		}
		s.SetScale(n)
		p.Services[name] = s
	}
	graph, err := NewGraph(p)
	if err != nil {
		return inFile(p, err)
	}
	want, err := upServices(p, graph, opts)
	if err != nil {
		return err
	}

	// Everything that can fail without touching the host is checked first:
	// the networking plan, images, config hashes, the plan.
	nets, svcNets, err := planNetworks(p)
	if err != nil {
		return inFile(p, err)
	}
	svcs, err := e.prepareServices(p, graph, want)
	if err != nil {
		return inFile(p, err)
	}
	if !opts.NoStart {
		if err := checkHealthDependencies(p, want, svcs.health); err != nil {
			return inFile(p, err)
		}
	}

	existing, err := e.projectContainers(p.Name)
	if err != nil {
		return err
	}
	observed := observe(existing)
	var all []desiredService
	for _, name := range graph.Order() {
		all = append(all, desiredService{Name: name})
	}
	if names := orphans(all, observed); len(names) > 0 && !opts.RemoveOrphans {
		e.warn(fmt.Sprintf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(names, ", ")))
	}
	// Plan only over the selected services, so that `up web` leaves the
	// containers of other services alone.
	var mine []observedContainer
	for _, c := range observed {
		if want[c.Service] || (opts.RemoveOrphans && p.Services[c.Service].Name == "") {
			mine = append(mine, c)
		}
	}
	restart := restartWith(p)
	actions := plan(svcs.desired, mine, planOptions{
		ForceRecreate: opts.ForceRecreate,
		NoRecreate:    opts.NoRecreate,
		RemoveOrphans: opts.RemoveOrphans,
		RestartWith:   restart,
	})
	changes := false
	for _, a := range actions {
		changes = changes || a.Kind != ActKeep
	}

	volumes, err := e.ensureVolumes(p, want)
	if err != nil {
		return inFile(p, err)
	}

	var mu sync.Mutex
	var created, createdNets []string
	defer func() {
		if err == nil {
			return
		}
		if errors.As(err, new(dependencyError)) {
			// Kept: published ports follow what runs.
			if derr := e.applyRules(p.Name); derr != nil {
				e.warn(fmt.Sprintf("firewall rules: %v", derr))
			}
			return
		}
		// Roll back what this call made; the error the user sees is the
		// cause, not the cleanup.
		cleanup := context.WithoutCancel(ctx)
		for i := len(created) - 1; i >= 0; i-- {
			if derr := e.deleteContainer(cleanup, created[i]); derr != nil {
				e.warn(fmt.Sprintf("remove %s after failed up: %v", created[i], derr))
			} else {
				e.emit(Removed, containerObject(created[i]), "")
			}
		}
		if len(createdNets) > 0 {
			if derr := e.removeNetworks(p.Name, createdNets); derr != nil {
				e.warn(fmt.Sprintf("remove networks after failed up: %v", derr))
			}
		}
		if derr := e.applyRules(p.Name); derr != nil {
			e.warn(fmt.Sprintf("firewall rules after failed up: %v", derr))
		}
	}()
	recs, createdNets, err := e.ensureNetworks(p, nets, svcNets, want)
	if err != nil {
		return inFile(p, err)
	}
	changes = changes || len(createdNets) > 0
	if !changes {
		// Nothing to create, start or remove: the rules are brought back
		// in line (a flushed ruleset) from the state already read.
		for _, a := range actions {
			e.emit(Running, containerObject(a.Container), "")
		}
		return e.applyRulesFor(p.Name, existing)
	}
	// Outbound NAT and isolation are in place before any container starts.
	if err := e.applyRules(p.Name); err != nil {
		return err
	}

	// A container restarted with a dependency (restart: true) is stopped
	// before that dependency's recreate.
	stopFirst := map[string][]string{}
	for _, a := range actions {
		if a.Kind == ActRestart {
			for _, dep := range restart[a.Service] {
				stopFirst[dep] = append(stopFirst[dep], a.Container)
			}
		}
	}
	byService := map[string][]Action{}
	for _, a := range actions {
		if a.Kind == ActRemove && p.Services[a.Service].Name == "" {
			// Orphans go first, before anything new starts.
			if err := e.removeContainer(ctx, a.Container, opts.Timeout); err != nil {
				return err
			}
			continue
		}
		byService[a.Service] = append(byService[a.Service], a)
	}

	err = graph.Walk(ctx, Forward, parallelism, func(ctx context.Context, name string) error {
		if !want[name] {
			return nil
		}
		s := p.Services[name]
		s.Image = imageName(p, s) // a built image's default name
		if !opts.NoStart && starts(byService[name]) {
			if err := e.waitDependencies(ctx, p, name, want); err != nil {
				return inFile(p, err)
			}
		}
		if slices.ContainsFunc(byService[name], func(a Action) bool { return a.Kind == ActRecreate }) {
			for _, c := range stopFirst[name] {
				if err := e.stopByName(ctx, c, opts.Timeout); err != nil {
					return inFile(p, serviceError(name, err))
				}
			}
		}
		for _, a := range byService[name] {
			in := specInput{
				Project: p, Service: s, Number: a.Number, Image: svcs.images[name],
				Layers: svcs.layers[name], ConfigHash: svcs.hashes[name], Volumes: volumes,
				EventLog:  e.EventLogPath(p.Name),
				Anonymous: func(i int) (volumeMount, error) { return e.anonymousVolume(p.Name, name, a.Number, i) },
			}
			var err error
			switch a.Kind {
			case ActKeep:
				e.emit(Running, containerObject(a.Container), "")
			case ActStart, ActRestart:
				if !opts.NoStart {
					err = e.startContainer(ctx, a.Container)
				}
			case ActRemove:
				err = e.removeContainer(ctx, a.Container, opts.Timeout)
			case ActRecreate:
				e.emit(Recreate, containerObject(a.Container), "")
				if err = e.removeContainer(ctx, a.Container, opts.Timeout); err != nil {
					break
				}
				fallthrough
			case ActCreate:
				var cname string
				cname, err = e.createContainer(ctx, in, svcNets[name], recs)
				if err == nil {
					mu.Lock()
					created = append(created, cname)
					mu.Unlock()
					if !opts.NoStart {
						err = e.startContainer(ctx, cname)
					}
				}
			}
			if err != nil {
				return inFile(p, serviceError(name, err))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Published ports follow the containers that now run.
	return e.applyRules(p.Name)
}

// preparedServices is what Up reads of the wanted services before it
// touches the host.
type preparedServices struct {
	images  map[string]image.Image
	layers  map[string][]string
	hashes  map[string]string
	health  map[string]*runtime.Healthcheck
	desired []desiredService
}

// prepareServices resolves the wanted services' images and works out
// their config hashes and healthchecks, in graph order: the errors that
// can come without touching the host come first.
func (e *Engine) prepareServices(p *types.Project, graph *Graph, want map[string]bool) (preparedServices, error) {
	out := preparedServices{
		images: map[string]image.Image{},
		layers: map[string][]string{},
		hashes: map[string]string{},
		health: map[string]*runtime.Healthcheck{},
	}
	// Services often share an image: each is read from the store once.
	type resolved struct {
		img    image.Image
		layers []string
		err    error
	}
	byRef := map[string]resolved{}
	for _, name := range graph.Order() {
		if !want[name] {
			continue
		}
		s := p.Services[name]
		ref := imageName(p, s)
		if ref == "" {
			return out, serviceError(name, errNoImage)
		}
		r, ok := byRef[ref]
		if !ok {
			r.img, r.err = e.images.Resolve(ref)
			if r.err == nil {
				r.layers, r.err = e.images.LayerDirs(r.img)
			}
			byRef[ref] = r
		}
		if errors.Is(r.err, image.ErrNotFound) {
			// Pulled or built a moment ago, and removed since.
			return out, serviceError(name, missingImage(p, s, ref))
		} else if r.err != nil {
			return out, serviceError(name, r.err)
		}
		hash, err := ServiceHash(s)
		if err != nil {
			return out, serviceError(name, err)
		}
		if out.health[name], err = serviceHealthcheck(s, r.img.Config); err != nil {
			return out, serviceError(name, err)
		}
		out.images[name], out.layers[name], out.hashes[name] = r.img, r.layers, hash
		out.desired = append(out.desired, desiredService{Name: name, Scale: s.GetScale(), Hash: hash, ImageID: r.img.ID})
	}
	return out, nil
}

// upImages pulls what the services up brings up need, per pull policy.
func (e *Engine) upImages(ctx context.Context, p *types.Project, opts UpOptions) error {
	graph, err := NewGraph(p)
	if err != nil {
		return inFile(p, err)
	}
	want, err := upServices(p, graph, opts)
	if err != nil {
		return err
	}
	var order []string
	for _, name := range graph.Order() {
		if want[name] {
			order = append(order, name)
		}
	}
	return e.ensureImages(ctx, p, order, imageFlags{Pull: opts.Pull, Build: opts.Build, NoBuild: opts.NoBuild})
}

// upServices is the set of services an up brings up: all, or the named
// ones with their dependencies (without them: --no-deps).
func upServices(p *types.Project, graph *Graph, opts UpOptions) (map[string]bool, error) {
	want := map[string]bool{}
	if len(opts.Services) == 0 {
		for n := range p.Services {
			want[n] = true
		}
		return want, nil
	}
	if _, err := selected(p, opts.Services); err != nil {
		return nil, err
	}
	names, err := graph.WithDependencies(opts.Services)
	if err != nil {
		return nil, inFile(p, err)
	}
	if opts.NoDeps {
		names = opts.Services
	}
	for _, n := range names {
		want[n] = true
	}
	return want, nil
}

// starts reports whether a service's actions start a container.
func starts(actions []Action) bool {
	return slices.ContainsFunc(actions, func(a Action) bool {
		return a.Kind == ActStart || a.Kind == ActCreate || a.Kind == ActRecreate || a.Kind == ActRestart
	})
}

// ensureVolumes creates the project's named volumes that the wanted services
// use, and finds the external ones.
func (e *Engine) ensureVolumes(p *types.Project, want map[string]bool) (map[string]volumeMount, error) {
	used := map[string]bool{}
	for name := range want {
		for _, v := range p.Services[name].Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				used[v.Source] = true
			}
		}
	}
	out := map[string]volumeMount{}
	for key := range used {
		cfg, ok := p.Volumes[key]
		if !ok {
			return nil, fmt.Errorf("volume %q is used by a service but not declared in the top-level volumes", key)
		}
		if cfg.Driver != "" && cfg.Driver != "local" {
			return nil, fmt.Errorf("volumes.%s: driver %q is not supported (only local)", key, cfg.Driver)
		}
		if cfg.External {
			vol, err := e.volumes.Get(cfg.Name)
			if err != nil {
				return nil, fmt.Errorf("external volume %q not found: create it first (volumes.%s)", cfg.Name, key)
			}
			out[key] = volumeMount{Path: vol.Path}
			continue
		}
		labels := map[string]string{LabelProject: p.Name, LabelVolume: key, LabelVersion: Version}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		vol, created, err := e.volumes.Ensure(cfg.Name, labels)
		if err != nil {
			return nil, fmt.Errorf("volumes.%s: %w", key, err)
		}
		if created {
			e.emit(Created, fmt.Sprintf("Volume %q", cfg.Name), "")
		}
		out[key] = volumeMount{Path: vol.Path, Created: created}
	}
	return out, nil
}

// anonymousVolume is the volume behind `- /data` in a service's volumes:
// named from the project, service, container number and index, so that a
// recreated container finds its data again, as with docker compose; kept by
// `down`, removed by `down -v`.
func (e *Engine) anonymousVolume(project, service string, number, index int) (volumeMount, error) {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d", project, service, number, index))
	labels := map[string]string{LabelProject: project, LabelService: service, LabelAnonymous: "true", LabelVersion: Version}
	vol, created, err := e.volumes.Ensure(hex.EncodeToString(sum[:]), labels)
	if err != nil {
		return volumeMount{}, err
	}
	return volumeMount{Path: vol.Path, Created: created}, nil
}

// upChecked are the services an up with opts may create containers of: the
// ones named and, unless NoDeps, what they depend on (all when none is
// named). A graph error is left to Up to report.
func upChecked(p *types.Project, opts UpOptions) []string {
	if len(opts.Services) == 0 || opts.NoDeps {
		return opts.Services
	}
	graph, err := NewGraph(p)
	if err != nil {
		return opts.Services
	}
	deps, err := graph.WithDependencies(opts.Services)
	if err != nil {
		return opts.Services
	}
	return deps
}
