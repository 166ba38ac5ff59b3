package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

func (c *cli) execCommand() *cobra.Command {
	var (
		noTTY       bool
		env         []string
		user, dir   string
		index       int
		detach      bool
		interactive bool
		privileged  bool
	)
	cmd := &cobra.Command{
		Use:   "exec [-T] [-e KEY=VAL] [-u USER] [-w DIR] SERVICE COMMAND [ARG...]",
		Short: "Run a command in a running container of a service",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			service := args[0]
			e, cs, err := c.containers(cmd, []string{service}, true)
			if err != nil {
				return err
			}
			var target *runtime.Container
			for _, ct := range cs {
				if ct.Spec.Labels[project.LabelOneoff] != "True" && ct.Spec.Labels[project.LabelNumber] == strconv.Itoa(index) {
					target = ct
				}
			}
			if target == nil {
				if p, err := c.load(cmd.Context()); err == nil {
					_, ok := p.Services[service]
					if _, off := p.DisabledServices[service]; !ok && !off {
						return fmt.Errorf("no such service: %s", service)
					}
				}
				if len(cs) > 0 {
					return fmt.Errorf("service %q has no container with index %d", service, index)
				}
				return fmt.Errorf("service %q is not running", service)
			}
			if !target.State.Status.Alive() {
				return fmt.Errorf("service %q is not running: container %s is %s", service, target.Spec.Name, target.State.Status)
			}
			for _, kv := range env {
				if _, _, ok := cutEnv(kv); !ok {
					return fmt.Errorf("--env %q: want KEY=VALUE", kv)
				}
			}
			opts := runtime.ExecOptions{Args: args[1:], Env: env, User: user, Cwd: dir, Privileged: privileged}
			tty := !noTTY && !detach && term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
			var code int
			switch {
			case detach:
				code, err = c.execDetached(e.Runtime(), target.Spec.Name, opts)
			case tty:
				code, err = execTTY(e.Runtime(), target.Spec.Name, opts)
			default:
				code, err = c.execPlain(e.Runtime(), target.Spec.Name, opts)
			}
			if err != nil {
				if errors.Is(err, runtime.ErrNotRunning) {
					return fmt.Errorf("service %q is not running: %w", service, err)
				}
				fmt.Fprintln(c.stderr, "Error: "+oneLine(err.Error()))
				return exitError{code: runtime.StartExitCode(err)}
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	// Everything after SERVICE belongs to the command: `exec web ls -l`.
	f.SetInterspersed(false)
	f.BoolVarP(&noTTY, "no-tty", "T", false, "do not allocate a terminal (one is allocated when berth's own stdin and stdout are terminals)")
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	f.StringVarP(&user, "user", "u", "", "run as this user (name, uid or uid:gid)")
	f.StringVarP(&dir, "workdir", "w", "", "working directory inside the container")
	f.IntVar(&index, "index", 1, "index of the container when the service has several replicas")
	f.BoolVarP(&detach, "detach", "d", false, "run the command in the background")
	f.BoolVar(&privileged, "privileged", false, "give the command every capability (it keeps the container's seccomp filter and devices)")
	f.BoolVarP(&interactive, "interactive", "i", true, "keep stdin open (always on, for docker compose compatibility)")
	return cmd
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], i > 0
		}
	}
	return kv, "", false
}

// execPlain runs the command with berth's stdin, stdout and stderr, and
// forwards the signals berth gets to it. A terminal is never handed to the
// container: a process holding it could type into the user's shell
// (TIOCSTI). Those, and writers that are not files, go through pipes.
func (c *cli) execPlain(rt *runtime.Runtime, name string, opts runtime.ExecOptions) (int, error) {
	var relays []func()
	defer func() {
		for _, r := range relays {
			r()
		}
	}()
	if term.IsTerminal(int(os.Stdin.Fd())) {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		defer r.Close()
		// Not waited for: a read of the terminal only ends with a key.
		go func() {
			io.Copy(w, os.Stdin)
			w.Close()
		}()
		opts.Stdin = r
	} else {
		opts.Stdin = os.Stdin
	}
	for _, out := range []struct {
		w  io.Writer
		to **os.File
	}{{c.stdout, &opts.Stdout}, {c.stderr, &opts.Stderr}} {
		f, stop, err := outputFile(out.w)
		if err != nil {
			return 0, err
		}
		*out.to = f
		relays = append(relays, stop)
	}
	p, err := rt.Exec(name, opts)
	if err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			p.Signal(sig)
		}
	}()
	return p.Wait()
}

// execDetached starts the command with no input or output and returns.
func (c *cli) execDetached(rt *runtime.Runtime, name string, opts runtime.ExecOptions) (int, error) {
	opts.Detach = true
	if _, err := rt.Exec(name, opts); err != nil {
		return 0, err
	}
	return 0, nil
}

// outputFile gives w as a file the command can write directly: w itself
// when it is a file and not a terminal, else a pipe copied into w until
// stop is called (after the command has exited).
func outputFile(w io.Writer) (*os.File, func(), error) {
	if f, ok := w.(*os.File); ok && !term.IsTerminal(int(f.Fd())) {
		return f, func() {}, nil
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(w, r)
	}()
	return pw, func() {
		pw.Close()
		wg.Wait()
		r.Close()
	}, nil
}

// execTTY runs the command on a terminal of the container's, with berth's
// terminal in raw mode relaying keys and output, and its size following
// berth's.
func execTTY(rt *runtime.Runtime, name string, opts runtime.ExecOptions) (int, error) {
	in := int(os.Stdin.Fd())
	if cols, rows, err := term.GetSize(in); err == nil {
		opts.ConsoleSize = unix.Winsize{Row: uint16(rows), Col: uint16(cols)}
	}
	opts.TTY = true
	opts.Env = append([]string{"TERM=" + termName()}, opts.Env...)
	p, err := rt.Exec(name, opts)
	if err != nil {
		return 0, err
	}
	console := p.Console
	defer console.Close()
	old, err := term.MakeRaw(in)
	if err != nil {
		p.Kill()
		p.Wait()
		return 0, fmt.Errorf("exec: raw terminal: %w", err)
	}
	defer term.Restore(in, old)

	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			if cols, rows, err := term.GetSize(in); err == nil {
				unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(rows), Col: uint16(cols)})
			}
		}
	}()
	go io.Copy(console, os.Stdin)
	copied := make(chan struct{})
	go func() {
		// Ends with EIO once the command and all it started have closed
		// the terminal.
		io.Copy(os.Stdout, console)
		close(copied)
	}()
	code, err := p.Wait()
	// A process the command left in the background may hold the
	// terminal open: the output of the command itself is there by now.
	select {
	case <-copied:
	case <-time.After(time.Second):
	}
	return code, err
}

// termName is the TERM the command gets: berth's own, as docker passes it.
func termName() string {
	if t := os.Getenv("TERM"); t != "" {
		return t
	}
	return "xterm"
}
