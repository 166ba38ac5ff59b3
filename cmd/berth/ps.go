package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

// psEntry is one container as `ps --format json` prints it, with docker
// compose's field names.
type psEntry struct {
	ID         string            `json:"ID"`
	Name       string            `json:"Name"`
	Image      string            `json:"Image"`
	Command    string            `json:"Command"`
	Project    string            `json:"Project"`
	Service    string            `json:"Service"`
	CreatedAt  string            `json:"CreatedAt"`
	RunningFor string            `json:"RunningFor"`
	State      string            `json:"State"`
	Status     string            `json:"Status"`
	ExitCode   int               `json:"ExitCode"`
	Health     string            `json:"Health"`
	Ports      string            `json:"Ports"`
	Labels     map[string]string `json:"Labels"`
	Pid        int               `json:"Pid,omitempty"`
	Error      string            `json:"Error,omitempty"`
}

func (c *cli) psCommand() *cobra.Command {
	var all, quiet, services bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cs, err := c.containers(cmd, args, true)
			if err != nil {
				return err
			}
			// Without -a, the containers that are up, and the dead
			// ones: whether those run is unknown, and the user must
			// hear of them.
			if !all {
				cs = slices.DeleteFunc(cs, func(ct *runtime.Container) bool {
					return !ct.State.Status.Alive() && ct.State.Status != runtime.Dead
				})
			}
			switch {
			case quiet:
				for _, ct := range cs {
					fmt.Fprintln(c.stdout, ct.Spec.ID)
				}
				return nil
			case services:
				seen := map[string]bool{}
				for _, ct := range cs {
					if s := ct.Spec.Labels[project.LabelService]; !seen[s] {
						seen[s] = true
						fmt.Fprintln(c.stdout, s)
					}
				}
				return nil
			case format == "json":
				enc := json.NewEncoder(c.stdout)
				for _, ct := range cs {
					if err := enc.Encode(newPsEntry(ct)); err != nil {
						return err
					}
				}
				return nil
			case format == "table" || format == "":
				tw := tabwriter.NewWriter(c.stdout, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS")
				for _, ct := range cs {
					en := newPsEntry(ct)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", en.Name, en.Image, quoteCommand(en.Command), en.Service, en.RunningFor, en.Status, en.Ports)
				}
				return tw.Flush()
			default:
				return fmt.Errorf("--format %q: use table or json", format)
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers, also stopped ones")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show IDs")
	f.BoolVar(&services, "services", false, "only show service names")
	f.StringVar(&format, "format", "table", "table or json")
	return cmd
}

func newPsEntry(ct *runtime.Container) psEntry {
	st := ct.State
	return psEntry{
		ID:         ct.Spec.ID,
		Name:       ct.Spec.Name,
		Image:      ct.Spec.Image,
		Command:    strings.Join(ct.Spec.Args, " "),
		Project:    ct.Spec.Labels[project.LabelProject],
		Service:    ct.Spec.Labels[project.LabelService],
		CreatedAt:  st.CreatedAt.Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(time.Since(st.CreatedAt)) + " ago",
		State:      string(st.Status),
		Status:     statusText(ct),
		ExitCode:   st.ExitCode,
		Health:     health(ct),
		Ports:      project.PortText(ct),
		Labels:     ct.Spec.Labels,
		Pid:        st.Pid,
		Error:      st.Error,
	}
}

// statusText is the STATUS column: running, running (healthy), exited (N),
// restarting (N), paused, created, dead (why: "state.json: unexpected end
// of JSON input").
func statusText(ct *runtime.Container) string {
	st := ct.State
	switch st.Status {
	case runtime.Restarting:
		return fmt.Sprintf("restarting (%d)", st.ExitCode)
	case runtime.Exited:
		return fmt.Sprintf("%s (%d)", st.Status, st.ExitCode)
	case runtime.Dead:
		if st.Error != "" {
			return fmt.Sprintf("%s (%s)", st.Status, st.Error)
		}
	case runtime.Running:
		if h := health(ct); h != "" {
			return "running (" + h + ")"
		}
	}
	return string(st.Status)
}

// health is the healthcheck's verdict on a running container, as docker
// compose's ps shows it: healthy, unhealthy, starting (no verdict yet); ""
// for a container without healthcheck or one that does not run.
func health(ct *runtime.Container) string {
	if ct.Spec.Healthcheck == nil || ct.State.Status != runtime.Running {
		return ""
	}
	if ct.State.Health == nil {
		return string(runtime.HealthStarting)
	}
	return string(ct.State.Health.Status)
}

// quoteCommand shortens a command as docker does: "sh -c 'while…".
func quoteCommand(s string) string {
	const max = 20
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return `"` + s + `"`
}

// containers opens the engine and lists the project's containers of the
// given services (all when none), running ones only unless all.
func (c *cli) containers(cmd *cobra.Command, services []string, all bool) (*project.Engine, []*runtime.Container, error) {
	name, err := c.projectNameOnly(cmd)
	if err != nil {
		return nil, nil, err
	}
	e, err := c.engine()
	if err != nil {
		return nil, nil, err
	}
	cs, err := e.Containers(name, services, all)
	if err != nil {
		return nil, nil, err
	}
	return e, cs, nil
}

// projectNameOnly finds the project name for commands that only read state
// (ps, logs): -p, or the compose file's project, as docker compose does.
func (c *cli) projectNameOnly(cmd *cobra.Command) (string, error) {
	if c.projectName != "" && len(c.files) == 0 {
		return c.projectName, nil
	}
	p, err := c.load(cmd.Context())
	if err != nil {
		return "", err
	}
	return p.Name, nil
}
