package project

import (
	"fmt"
	"sort"
	"strings"

	"github.com/berth-dev/berth/runtime"
)

// The plan is pure: what the project wants (desired) against what the state
// on disk holds (observed) gives a list of actions; the engine then carries
// them out. Tests compare the plan's text.

// ActionKind is what to do with one container.
type ActionKind int

const (
	// ActKeep: the container matches its service and runs; nothing to do.
	ActKeep ActionKind = iota
	// ActStart: the container matches its service but does not run.
	ActStart
	// ActCreate: no container has this number yet.
	ActCreate
	// ActRecreate: the service's config changed; replace the container.
	ActRecreate
	// ActRemove: the container's number is above the scale, or (with
	// RemoveOrphans) its service is gone from the file.
	ActRemove
	// ActRestart: the container matches its service, but a dependency it
	// restarts with (depends_on restart: true) is recreated: it is stopped
	// before that recreate and started again after, as docker compose does.
	ActRestart
)

func (k ActionKind) String() string {
	return [...]string{"keep", "start", "create", "recreate", "remove", "restart"}[k]
}

// Action is one step of a plan.
type Action struct {
	Kind    ActionKind
	Service string
	Number  int
	// Container is the existing container's name (empty for ActCreate).
	Container string
	// Why says what made the plan choose this action, for debug output.
	Why string
}

func (a Action) String() string {
	s := fmt.Sprintf("%s %s-%d", a.Kind, a.Service, a.Number)
	if a.Container != "" {
		s += " " + a.Container
	}
	if a.Why != "" {
		s += " (" + a.Why + ")"
	}
	return s
}

// desiredService is what the project wants of one service.
type desiredService struct {
	Name  string
	Scale int
	Hash  string
	// ImageID is the ID of the service's image in the store now.
	ImageID string
}

// observedContainer is what the state holds of one container of the project.
type observedContainer struct {
	Name    string
	Service string
	Number  int
	Hash    string
	Status  runtime.Status
	// ImageID is the ID of the image the container was made from.
	ImageID string
}

type planOptions struct {
	ForceRecreate bool
	NoRecreate    bool
	RemoveOrphans bool
	// RestartWith maps a service to the dependencies it restarts with
	// (depends_on with restart: true).
	RestartWith map[string][]string
}

// plan decides, service by service, what becomes of each container.
// Orphans (containers of services the file no longer has) are removed only
// with RemoveOrphans; otherwise they are left alone (the caller warns).
func plan(desired []desiredService, observed []observedContainer, opts planOptions) []Action {
	byService := map[string][]observedContainer{}
	for _, c := range observed {
		byService[c.Service] = append(byService[c.Service], c)
	}
	var actions []Action
	wanted := map[string]bool{}
	for _, d := range desired {
		wanted[d.Name] = true
		have := map[int]observedContainer{}
		for _, c := range byService[d.Name] {
			if old, dup := have[c.Number]; dup {
				// Two containers claim one number (a crash between create
				// and remove): keep the one that runs, drop the other.
				if old.Status == runtime.Running {
					actions = append(actions, Action{Kind: ActRemove, Service: d.Name, Number: c.Number, Container: c.Name, Why: "duplicate number"})
					continue
				}
				actions = append(actions, Action{Kind: ActRemove, Service: d.Name, Number: old.Number, Container: old.Name, Why: "duplicate number"})
			}
			have[c.Number] = c
		}
		for n := 1; n <= d.Scale; n++ {
			c, ok := have[n]
			switch {
			case !ok:
				actions = append(actions, Action{Kind: ActCreate, Service: d.Name, Number: n})
			case opts.ForceRecreate:
				actions = append(actions, Action{Kind: ActRecreate, Service: d.Name, Number: n, Container: c.Name, Why: "forced"})
			case c.Status == runtime.Dead:
				// Its records are broken: it can only be removed, and the
				// service needs a container all the same.
				actions = append(actions, Action{Kind: ActRecreate, Service: d.Name, Number: n, Container: c.Name, Why: "dead"})
			case c.Hash != d.Hash && !opts.NoRecreate:
				actions = append(actions, Action{Kind: ActRecreate, Service: d.Name, Number: n, Container: c.Name, Why: "config changed"})
			case c.ImageID != d.ImageID && c.ImageID != "" && d.ImageID != "" && !opts.NoRecreate:
				// A pull or a load moved the service's tag to another
				// image: docker compose recreates on this divergence too.
				actions = append(actions, Action{Kind: ActRecreate, Service: d.Name, Number: n, Container: c.Name, Why: "image changed"})
			case c.Status.Alive():
				actions = append(actions, Action{Kind: ActKeep, Service: d.Name, Number: n, Container: c.Name})
			default:
				actions = append(actions, Action{Kind: ActStart, Service: d.Name, Number: n, Container: c.Name, Why: string(c.Status)})
			}
		}
		var extra []int
		for n := range have {
			if n > d.Scale || n < 1 {
				extra = append(extra, n)
			}
		}
		sort.Sort(sort.Reverse(sort.IntSlice(extra)))
		for _, n := range extra {
			actions = append(actions, Action{Kind: ActRemove, Service: d.Name, Number: n, Container: have[n].Name, Why: "scaled down"})
		}
	}
	restartDependents(actions, opts.RestartWith)
	if opts.RemoveOrphans {
		for _, c := range observed {
			if !wanted[c.Service] {
				actions = append(actions, Action{Kind: ActRemove, Service: c.Service, Number: c.Number, Container: c.Name, Why: "orphan"})
			}
		}
	}
	return actions
}

// restartDependents turns the keep of a container into a restart when a
// dependency its service restarts with is recreated.
func restartDependents(actions []Action, with map[string][]string) {
	recreated := map[string]bool{}
	for _, a := range actions {
		if a.Kind == ActRecreate {
			recreated[a.Service] = true
		}
	}
	for i, a := range actions {
		if a.Kind != ActKeep {
			continue
		}
		for _, dep := range with[a.Service] {
			if recreated[dep] {
				actions[i].Kind, actions[i].Why = ActRestart, dep+" recreated"
				break
			}
		}
	}
}

// orphans are the containers whose service the project no longer has.
func orphans(desired []desiredService, observed []observedContainer) []string {
	wanted := map[string]bool{}
	for _, d := range desired {
		wanted[d.Name] = true
	}
	var names []string
	for _, c := range observed {
		if !wanted[c.Service] {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	return names
}

// planText renders a plan one action a line, as tests compare it.
func planText(actions []Action) string {
	var b strings.Builder
	for _, a := range actions {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	return b.String()
}
