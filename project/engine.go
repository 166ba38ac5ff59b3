package project

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
)

// DefaultRoot is where berth keeps its state when BERTH_ROOT is not set.
const DefaultRoot = "/var/lib/berth"

// parallelism bounds how many services of one graph level start or stop at once.
const parallelism = 8

// Engine converges projects on this host: it owns nothing long-lived, only
// the stores under one root, and every call reads the state afresh.
type Engine struct {
	root    string
	runtime *runtime.Runtime
	images  *image.Store
	volumes *runtime.Volumes
	// networks holds the networks and address leases of every project.
	networks *network.Store
	// ifPrefix starts the names of the bridges and veth pairs berth makes.
	ifPrefix string
	events   func(Event)
	// registry and progress are for pulls and pushes (pull.go).
	registry image.RegistryOptions
	progress func(ImageEvent)
	// buildOutput receives the builder's progress (build.go).
	buildOutput io.Writer
	// states is where waits read containers' states: the runtime, or a
	// test's fake.
	states stateReader
}

// Options configure an Engine.
type Options struct {
	// Root is the state folder (BERTH_ROOT); DefaultRoot when empty.
	Root string
	// Events receives progress as it happens; nil discards it.
	Events func(Event)
	// IfPrefix starts the names of the interfaces berth makes (at most 5
	// characters); DefaultIfPrefix when empty.
	IfPrefix string
	// AddressPools are where networks without a declared subnet get one
	// ("10.213.128.0/17:24,…", as network.ParsePools); docker's defaults
	// when empty.
	AddressPools string
	// Registry are the network settings of pulls and pushes (insecure
	// registries, credentials).
	Registry image.RegistryOptions
	// Progress receives the steps of pulls and pushes, layer by layer, as
	// they happen, from several goroutines at once; nil discards them.
	Progress func(ImageEvent)
	// BuildOutput receives the progress of builds, as docker's plain
	// progress prints it ("#5 [2/4] RUN make", its output, "#5 DONE 0.3s"
	// or "#5 CACHED"), one build at a time; nil discards it.
	BuildOutput io.Writer
}

// Open opens the stores under the root, creating them if needed.
func Open(opts Options) (*Engine, error) {
	root := opts.Root
	if root == "" {
		root = DefaultRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	rt, err := runtime.New(filepath.Join(root, "containers"))
	if err != nil {
		return nil, err
	}
	images, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		return nil, err
	}
	volumes, err := runtime.NewVolumes(filepath.Join(root, "volumes"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, eventsDir), 0o711); err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	networks, err := network.OpenStore(filepath.Join(root, "networks"))
	if err != nil {
		return nil, err
	}
	if opts.AddressPools != "" {
		pools, err := network.ParsePools(opts.AddressPools)
		if err != nil {
			return nil, err
		}
		if networks, err = networks.WithPools(pools); err != nil {
			return nil, err
		}
	}
	prefix := opts.IfPrefix
	if prefix == "" {
		prefix = DefaultIfPrefix
	}
	if len(prefix) > 5 {
		return nil, fmt.Errorf("interface prefix %q: at most 5 characters", prefix)
	}
	return &Engine{root: root, runtime: rt, images: images, volumes: volumes, networks: networks, ifPrefix: prefix, events: opts.Events, states: rt,
		registry: opts.Registry, progress: opts.Progress, buildOutput: opts.BuildOutput}, nil
}

// eventsDir holds one event log per project, under the root.
const eventsDir = "events"

// EventLogPath is the file the events of project's containers go to, one
// JSON runtime.Event a line: the engine writes create and destroy, each
// container's monitor the rest (start, die, health_status…). The file
// outlives the containers: `down` leaves it, as docker keeps the history of
// removed containers, and the next `up` appends to it.
func (e *Engine) EventLogPath(project string) string {
	return filepath.Join(e.root, eventsDir, project+".jsonl")
}

// Images is the engine's image store.
func (e *Engine) Images() *image.Store { return e.images }

// Runtime is the engine's container runtime.
func (e *Engine) Runtime() *runtime.Runtime { return e.runtime }

// Volumes is the engine's named volume store.
func (e *Engine) Volumes() *runtime.Volumes { return e.volumes }

// EventKind names a step of progress, in docker compose's words.
type EventKind string

const (
	Creating   EventKind = "Creating"
	Created    EventKind = "Created"
	Recreate   EventKind = "Recreate"
	Recreated  EventKind = "Recreated"
	Starting   EventKind = "Starting"
	Started    EventKind = "Started"
	Running    EventKind = "Running"
	Stopping   EventKind = "Stopping"
	Stopped    EventKind = "Stopped"
	Removing   EventKind = "Removing"
	Removed    EventKind = "Removed"
	Waiting    EventKind = "Waiting"
	Healthy    EventKind = "Healthy"
	Exited     EventKind = "Exited"
	Warning    EventKind = "Warning"
	ErrorEvent EventKind = "Error"
)

// Event is one line of progress: "Container hello-web-1  Started".
type Event struct {
	Time time.Time
	Kind EventKind
	// Object is what the event is about: `Container hello-web-1`,
	// `Volume "hello_data"`; empty for a plain warning.
	Object string
	Text   string
}

func (e *Engine) emit(kind EventKind, object, text string) {
	if e.events != nil {
		e.events(Event{Time: time.Now(), Kind: kind, Object: object, Text: text})
	}
}

func (e *Engine) warn(text string) { e.emit(Warning, "", text) }

// containerObject is how events name a container.
func containerObject(name string) string { return "Container " + name }

// projectContainers lists the containers of project name, sorted by service
// then number.
func (e *Engine) projectContainers(name string) ([]*runtime.Container, error) {
	all, err := e.runtime.List()
	if err != nil {
		return nil, err
	}
	var out []*runtime.Container
	for _, c := range all {
		if c.Spec.Labels[LabelProject] == name || adoptDead(c, name) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		si, sj := out[i].Spec.Labels[LabelService], out[j].Spec.Labels[LabelService]
		if si != sj {
			return si < sj
		}
		return containerNumber(out[i]) < containerNumber(out[j])
	})
	return out, nil
}

// adoptDead claims for project name a dead container whose labels are
// lost (its config.json and the runtime's copy of its labels both
// unreadable, as a crash of the host mid-write can leave them), by the name
// compose gives containers, PROJECT-SERVICE-N, and fills in the labels that
// name tells, so that ps shows it and down removes it with its service.
// That is all there is to go by: a container_name is not recognised, and
// as project names may hold dashes, PROJECT-SERVICE-N of project "a" is
// also a SERVICE-N of project "a-PROJECT…"; either may then remove it, and
// it is broken already.
func adoptDead(c *runtime.Container, name string) bool {
	if c.State.Status != runtime.Dead || len(c.Spec.Labels) > 0 {
		return false
	}
	rest, ok := strings.CutPrefix(c.Spec.Name, name+"-")
	i := strings.LastIndexByte(rest, '-')
	if !ok || i <= 0 {
		return false
	}
	if n, err := strconv.Atoi(rest[i+1:]); err != nil || n < 1 {
		return false
	}
	c.Spec.Labels = map[string]string{LabelProject: name, LabelService: rest[:i], LabelNumber: rest[i+1:]}
	return true
}

// live reports whether a container runs, is between two runs of its
// restart policy, or is paused: it is up, as docker counts it.
func live(c *runtime.Container) bool { return c.State.Status.Alive() }

func containerNumber(c *runtime.Container) int {
	n, _ := strconv.Atoi(c.Spec.Labels[LabelNumber])
	return n
}

// observe turns the project's containers into the plan's view of them.
func observe(cs []*runtime.Container) []observedContainer {
	out := make([]observedContainer, 0, len(cs))
	for _, c := range cs {
		if oneoff(c) {
			continue // run's containers are not the service's replicas
		}
		out = append(out, observedContainer{
			Name:    c.Spec.Name,
			Service: c.Spec.Labels[LabelService],
			Number:  containerNumber(c),
			Hash:    c.Spec.Labels[LabelConfigHash],
			Status:  c.State.Status,
			ImageID: c.Spec.ImageID,
		})
	}
	return out
}

// inFile prefixes err with the project's first compose file, so that a
// user reads where the problem is: `compose.yaml: service "web": …`.
func inFile(p *types.Project, err error) error {
	if err == nil || p == nil || len(p.ComposeFiles) == 0 {
		return err
	}
	file := p.ComposeFiles[0]
	if rel, rerr := filepath.Rel(p.WorkingDir, file); rerr == nil && !filepath.IsAbs(rel) && rel[0] != '.' {
		file = rel
	}
	return fmt.Errorf("%s: %w", file, err)
}

// serviceError names the service an error is about.
func serviceError(service string, err error) error {
	return fmt.Errorf("service %q: %w", service, err)
}

// stopTimeout turns the CLI's -t (nil: each container's own) into the
// runtime's convention (negative: the spec's).
func stopTimeout(t *time.Duration) time.Duration {
	if t == nil {
		return -1
	}
	return *t
}

// selected is the set of services a command applies to: the named ones, or
// all of the project's when none is named. Unknown names are an error.
func selected(p *types.Project, services []string) (map[string]bool, error) {
	set := map[string]bool{}
	if len(services) == 0 {
		for name := range p.Services {
			set[name] = true
		}
		return set, nil
	}
	for _, s := range services {
		if _, ok := p.Services[s]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchService, s)
		}
		set[s] = true
	}
	return set, nil
}

// ErrNoContainers: the command found no container to act on.
var ErrNoContainers = errors.New("no containers")
