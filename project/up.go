package project

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/network"
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
}

// Up converges the project: it creates, recreates, starts or removes
// containers so that each selected service runs as its file says, in
// dependency order, independent services in parallel. When it fails, every
// container it created is removed again, so the project is never left
// half-made by this call.
func (e *Engine) Up(ctx context.Context, p *types.Project, opts UpOptions) (err error) {
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
		s.SetScale(n)
		p.Services[name] = s
	}
	graph, err := NewGraph(p)
	if err != nil {
		return inFile(p, err)
	}
	want := map[string]bool{}
	if len(opts.Services) > 0 {
		if _, err := selected(p, opts.Services); err != nil {
			return err
		}
		names, err := graph.WithDependencies(opts.Services)
		if err != nil {
			return inFile(p, err)
		}
		if opts.NoDeps {
			names = opts.Services
		}
		for _, n := range names {
			want[n] = true
		}
	} else {
		for n := range p.Services {
			want[n] = true
		}
	}

	// Everything that can fail without touching the host is checked first:
	// the networking plan, images, config hashes, the plan.
	nets, svcNets, err := planNetworks(p)
	if err != nil {
		return inFile(p, err)
	}
	images := map[string]image.Image{}
	layers := map[string][]string{}
	hashes := map[string]string{}
	var desired []desiredService
	for _, name := range graph.Order() {
		if !want[name] {
			continue
		}
		s := p.Services[name]
		if s.Image == "" {
			return inFile(p, serviceError(name, errNoImage))
		}
		img, err := e.images.Resolve(s.Image)
		if errors.Is(err, image.ErrNotFound) {
			return inFile(p, serviceError(name, fmt.Errorf("image %q not found in the local store (pulling is not supported yet): add it with 'berth image load' or 'berth image import'", s.Image)))
		} else if err != nil {
			return inFile(p, serviceError(name, err))
		}
		dirs, err := e.images.LayerDirs(img)
		if err != nil {
			return inFile(p, serviceError(name, err))
		}
		hash, err := ServiceHash(s)
		if err != nil {
			return inFile(p, serviceError(name, err))
		}
		images[name], layers[name], hashes[name] = img, dirs, hash
		desired = append(desired, desiredService{Name: name, Scale: s.GetScale(), Hash: hash})
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
	actions := plan(desired, mine, planOptions{
		ForceRecreate: opts.ForceRecreate,
		NoRecreate:    opts.NoRecreate,
		RemoveOrphans: opts.RemoveOrphans,
	})

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
	// Outbound NAT and isolation are in place before any container starts.
	if err := e.applyRules(p.Name); err != nil {
		return err
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
		for _, a := range byService[name] {
			in := specInput{
				Project: p, Service: s, Number: a.Number, Image: images[name],
				Layers: layers[name], ConfigHash: hashes[name], Volumes: volumes,
				Anonymous: func(i int) (volumeMount, error) { return e.anonymousVolume(p.Name, name, a.Number, i) },
			}
			var err error
			switch a.Kind {
			case ActKeep:
				e.emit(Running, containerObject(a.Container), "")
			case ActStart:
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

func (e *Engine) createContainer(ctx context.Context, in specInput, sn serviceNet, recs map[string]network.Network) (string, error) {
	spec, err := containerSpec(in)
	if err != nil {
		return "", err
	}
	e.emit(Creating, containerObject(spec.Name), "")
	if err := e.containerNetwork(&spec, in.Project, in.Service.Name, sn, recs); err != nil {
		return "", err
	}
	if _, err := e.runtime.Create(ctx, spec); err != nil {
		e.releaseContainer(spec.Name)
		if errors.Is(err, runtime.ErrExists) {
			return "", fmt.Errorf("container name %q is already in use: remove that container or change container_name", spec.Name)
		}
		return "", fmt.Errorf("create container: %w", err)
	}
	e.emit(Created, containerObject(spec.Name), "")
	return spec.Name, nil
}

func (e *Engine) startContainer(ctx context.Context, name string) error {
	if c, err := e.runtime.Get(name); err == nil && !live(c) {
		for _, p := range containerPorts(c) {
			if err := checkPortFree(p); err != nil {
				return fmt.Errorf("ports: %w", err)
			}
		}
	}
	e.emit(Starting, containerObject(name), "")
	if err := e.runtime.Start(ctx, name); err != nil {
		e.emit(ErrorEvent, containerObject(name), err.Error())
		return fmt.Errorf("start container %s: %w", name, err)
	}
	e.emit(Started, containerObject(name), "")
	return nil
}

func (e *Engine) stopContainer(ctx context.Context, c *runtime.Container, timeout *time.Duration) error {
	if !live(c) {
		return nil
	}
	e.emit(Stopping, containerObject(c.Spec.Name), "")
	if err := e.runtime.Stop(ctx, c.Spec.Name, stopTimeout(timeout)); err != nil {
		return fmt.Errorf("stop container %s: %w", c.Spec.Name, err)
	}
	e.emit(Stopped, containerObject(c.Spec.Name), "")
	return nil
}

func (e *Engine) removeContainer(ctx context.Context, name string, timeout *time.Duration) error {
	c, err := e.runtime.Get(name)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := e.stopContainer(ctx, c, timeout); err != nil {
		return err
	}
	e.emit(Removing, containerObject(name), "")
	if err := e.deleteContainer(ctx, name); err != nil {
		return err
	}
	e.emit(Removed, containerObject(name), "")
	return nil
}

// deleteContainer removes a container and gives back its addresses.
func (e *Engine) deleteContainer(ctx context.Context, name string) error {
	c, _ := e.runtime.Get(name)
	if err := e.runtime.Delete(ctx, name); err != nil {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	if c != nil {
		// The pairs go with the container's namespace, but the kernel
		// tears a namespace down in the background: take them now, so
		// that a down leaves nothing behind the moment it returns.
		if err := e.detachContainer(c); err != nil {
			return fmt.Errorf("remove container %s: %w", name, err)
		}
	}
	if err := e.releaseContainer(name); err != nil {
		return fmt.Errorf("remove container %s: release its addresses: %w", name, err)
	}
	return nil
}
