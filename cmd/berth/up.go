package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

func (c *cli) upCommand() *cobra.Command {
	var opts project.UpOptions
	var detach, noPrefix, abort, wait, withTUI, quietPull bool
	var exitFrom string
	var scale, attachTo, noAttach []string
	var timeout, waitTimeout int
	cmd := &cobra.Command{
		Use:   "up [SERVICE...]",
		Short: "Create and start containers",
		Long: "Create and start the project's containers, dependencies first. Without -d,\n" +
			"follow their logs; Ctrl-C stops them gracefully.",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.open(ctx)
			if err != nil {
				return err
			}
			c.transfers.quiet = quietPull
			opts.Services = args
			if opts.Scale, err = parseScale(scale); err != nil {
				return err
			}
			if exitFrom != "" {
				abort = true
				if _, ok := p.Services[exitFrom]; !ok {
					return fmt.Errorf("--exit-code-from: %w: %s", project.ErrNoSuchService, exitFrom)
				}
			}
			if wait && abort {
				return errors.New("--wait cannot go with --abort-on-container-exit or --exit-code-from: --wait returns once the containers are up")
			}
			if detach && abort {
				return errors.New("--abort-on-container-exit and --exit-code-from need an attached up: drop -d")
			}
			if waitTimeout < 0 {
				return fmt.Errorf("--wait-timeout %d: want a number of seconds, 0 for none", waitTimeout)
			}
			if withTUI {
				if detach || abort {
					return errors.New("--tui cannot go with -d, --wait, --abort-on-container-exit or --exit-code-from")
				}
				if err := needTerminal("berth up --tui", "berth up"); err != nil {
					return err
				}
			}
			detach = detach || wait
			if cmd.Flags().Changed("timeout") {
				d := time.Duration(timeout) * time.Second
				opts.Timeout = &d
			}
			// Ctrl-C during the start rolls back what this up made.
			began := time.Now()
			// Ctrl-C here cancels ctx, and Up rolls back what it made.
			if err := e.Up(ctx, p, opts); err != nil {
				return err
			}
			if wait && !opts.NoStart {
				return e.WaitReady(ctx, p, opts, time.Duration(waitTimeout)*time.Second)
			}
			if detach || opts.NoStart {
				return nil
			}
			if withTUI {
				return c.upTUI(ctx, e, p, args, opts.Timeout)
			}
			cs, err := e.Containers(p.Name, args, true)
			if err != nil {
				return err
			}
			cs = attached(cs, attachTo, noAttach)
			return c.attach(ctx, e, p, args, cs, attachOptions{
				timeout: opts.Timeout, prefix: !noPrefix, since: began, abort: abort, exitFrom: exitFrom,
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&detach, "detach", "d", false, "run containers in the background")
	f.BoolVar(&opts.ForceRecreate, "force-recreate", false, "recreate containers even if their configuration has not changed")
	f.BoolVar(&opts.NoRecreate, "no-recreate", false, "do not recreate containers that exist")
	f.BoolVar(&opts.RemoveOrphans, "remove-orphans", false, "remove containers of services not in the compose file")
	f.BoolVar(&opts.NoStart, "no-start", false, "create containers without starting them")
	f.BoolVar(&c.noColor, "no-color", false, "produce monochrome output")
	f.BoolVar(&noPrefix, "no-log-prefix", false, "don't print the container name before each line")
	f.BoolVar(&opts.NoDeps, "no-deps", false, "don't start the services' dependencies")
	f.StringArrayVar(&scale, "scale", nil, "SERVICE=NUM: the number of containers of a service (overrides scale in the file)")
	f.BoolVar(&abort, "abort-on-container-exit", false, "stop all containers as soon as one exits")
	f.StringVar(&exitFrom, "exit-code-from", "", "return this service's exit code (implies --abort-on-container-exit)")
	f.StringArrayVar(&attachTo, "attach", nil, "only follow the output of these services")
	f.StringArrayVar(&noAttach, "no-attach", nil, "don't follow the output of these services")
	f.IntVarP(&timeout, "timeout", "t", 10, "seconds to wait for a container to stop before killing it")
	f.BoolVar(&quietPull, "quiet-pull", false, "pull without printing progress information")
	f.BoolVar(&withTUI, "tui", false, "show the services and their live logs in a terminal UI; quitting it stops them")
	f.BoolVar(&wait, "wait", false, "wait for the containers to be running and healthy (implies -d)")
	f.IntVar(&waitTimeout, "wait-timeout", 0, "with --wait, give up after this many seconds (0: no limit)")
	f.StringVar(&opts.Pull, "pull", "policy", `pull images before running ("always"|"missing"|"never"|"policy": each service's pull_policy)`)
	f.BoolVar(&opts.Build, "build", false, "build images before starting containers")
	f.BoolVar(&opts.NoBuild, "no-build", false, "don't build an image, even if it's missing")
	cmd.MarkFlagsMutuallyExclusive("force-recreate", "no-recreate")
	cmd.MarkFlagsMutuallyExclusive("build", "no-build")
	return cmd
}

// attach follows the containers' logs until they all exit, or until Ctrl-C,
// which stops them gracefully (a second Ctrl-C kills them).
// attachOptions are the flags of `up` that shape the attached output.
type attachOptions struct {
	timeout *time.Duration
	prefix  bool
	// since: what containers printed before this up (a container kept
	// running, an earlier run's log) is not shown again.
	since time.Time
	// abort stops everything when the first container exits; exitFrom
	// names the service whose exit code up returns.
	abort    bool
	exitFrom string
}

func (c *cli) attach(ctx context.Context, e *project.Engine, p *types.Project, services []string, cs []*runtime.Container, opts attachOptions) error {
	if len(cs) == 0 {
		return nil
	}
	var names []string
	for _, ct := range cs {
		names = append(names, displayName(ct))
	}
	fmt.Fprintln(c.stdout, "Attaching to "+strings.Join(names, ", "))
	printer := newLogPrinter(c.stdout, cs, c.colors(c.stdout), opts.prefix, false)

	// From here signals are counted on sigs (the first stops gracefully,
	// the second kills), not taken from ctx, which the first one cancels.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	interrupted := ctx.Err() != nil // a Ctrl-C before sigs listened
	ctx = context.WithoutCancel(ctx)
	followCtx, cancelFollow := context.WithCancel(ctx)
	defer cancelFollow()
	exited := make(chan *runtime.Container, 1)
	var wg sync.WaitGroup
	for _, ct := range cs {
		wg.Go(func() {
			err := e.Logs(followCtx, []*runtime.Container{ct}, project.LogOptions{Tail: -1, Follow: true, Since: opts.since},
				func(ct *runtime.Container, le runtime.LogEntry) error { return printer.line(ct, le, true) })
			if err != nil || followCtx.Err() != nil {
				return
			}
			if st, err := e.Runtime().Get(ct.Spec.Name); err == nil {
				printer.note(ct, exitText(st.State))
				select {
				case exited <- st:
				default:
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var first *runtime.Container
	if !interrupted {
		select {
		case <-done:
			if opts.exitFrom != "" {
				return exitCodeOf(e, p.Name, opts.exitFrom)
			}
			return nil
		case <-sigs:
		case st := <-exitedIfAbort(exited, opts.abort):
			first = st
			fmt.Fprintf(c.stderr, "Aborting on container exit...\n")
		}
	}
	if first == nil {
		fmt.Fprintln(c.stderr, "Gracefully stopping... (press Ctrl+C again to force)")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(ctx, p, services, opts.timeout) }()
	select {
	case err := <-stopped:
		cancelFollow()
		wg.Wait()
		if err != nil {
			return err
		}
	case <-sigs:
		// The graceful stop holds the project lock; killing needs none.
		for _, ct := range cs {
			_ = e.Runtime().Kill(ctx, ct.Spec.Name, syscall.SIGKILL)
		}
		<-stopped
		cancelFollow()
		wg.Wait()
	}
	if first != nil {
		if opts.exitFrom != "" {
			return exitCodeOf(e, p.Name, opts.exitFrom)
		}
		if first.State.ExitCode != 0 {
			return exitError{code: first.State.ExitCode}
		}
		return nil
	}
	return exitError{code: 130}
}

// exitedIfAbort is the channel of exited containers when up aborts on the
// first exit, and a channel that never delivers otherwise.
func exitedIfAbort(exited chan *runtime.Container, abort bool) <-chan *runtime.Container {
	if abort {
		return exited
	}
	return nil
}

// exitCodeOf is the exit code of service's first container, as up's own.
func exitCodeOf(e *project.Engine, projectName, service string) error {
	cs, err := e.Containers(projectName, []string{service}, true)
	if err != nil || len(cs) == 0 {
		return fmt.Errorf("--exit-code-from: no container of %s", service)
	}
	if code := cs[0].State.ExitCode; code != 0 {
		return exitError{code: code}
	}
	return nil
}

// attached keeps the containers whose output up follows.
func attached(cs []*runtime.Container, only, not []string) []*runtime.Container {
	var out []*runtime.Container
	for _, ct := range cs {
		svc := ct.Spec.Labels[project.LabelService]
		if (len(only) > 0 && !slices.Contains(only, svc)) || slices.Contains(not, svc) {
			continue
		}
		out = append(out, ct)
	}
	return out
}

// parseScale reads --scale SERVICE=NUM flags.
func parseScale(flags []string) (map[string]int, error) {
	out := map[string]int{}
	for _, f := range flags {
		name, num, ok := strings.Cut(f, "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("--scale %q: want SERVICE=NUM", f)
		}
		out[name] = n
	}
	return out, nil
}
