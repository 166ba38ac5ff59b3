package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/runtime"
)

func (c *cli) killCommand() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [-s SIGNAL] [SERVICE...]",
		Short: "Send a signal to running containers (SIGKILL by default)",
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := runtime.ParseSignal(signal)
			if err != nil {
				return fmt.Errorf("--signal %q: %w", signal, err)
			}
			return c.eachRunning(cmd, args, "kill", "Killed", func(rt *runtime.Runtime, name string) error {
				if err := rt.Kill(cmd.Context(), name, sig); err != nil && !errors.Is(err, runtime.ErrNotRunning) {
					return err
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "SIGKILL", "signal to send")
	return cmd
}

func (c *cli) waitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait SERVICE...",
		Short: "Wait until the services' containers stop, and print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, cs, err := c.containers(cmd, args, true)
			if err != nil {
				return err
			}
			if len(cs) == 0 {
				return fmt.Errorf("no containers for %s", strings.Join(args, ", "))
			}
			code := 0
			for i, ct := range cs {
				st, err := waitExit(cmd, e.Runtime(), ct.Spec.Name)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.stdout, st.ExitCode)
				if i == 0 {
					code = st.ExitCode
				}
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
}

// waitExit polls a container's state until it no longer runs.
func waitExit(cmd *cobra.Command, rt *runtime.Runtime, name string) (runtime.State, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ct, err := rt.Get(name)
		if err != nil {
			return runtime.State{}, err
		}
		if ct.State.Status != runtime.Running && ct.State.Status != runtime.Restarting {
			return ct.State, nil
		}
		select {
		case <-cmd.Context().Done():
			return runtime.State{}, cmd.Context().Err()
		case <-tick.C:
		}
	}
}

func (c *cli) topCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Show the processes of each running container",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, cs, err := c.containers(cmd, args, false)
			if err != nil {
				return err
			}
			for i, ct := range cs {
				pids, err := e.Runtime().Processes(ct.Spec.Name)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(c.stdout)
				}
				fmt.Fprintln(c.stdout, ct.Spec.Name)
				tw := tabwriter.NewWriter(c.stdout, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "UID\tPID\tPPID\tCMD")
				for _, pid := range pids {
					uid, ppid, cmdline := procInfo(pid)
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", uid, pid, ppid, cmdline)
				}
				tw.Flush()
			}
			return nil
		},
	}
}

// procInfo reads a process's owner, parent and command line from /proc.
func procInfo(pid int) (uid, ppid, cmdline string) {
	uid, ppid = "?", "?"
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "Uid:":
				uid = f[1]
				if uid == "0" {
					uid = "root"
				}
			case len(f) >= 2 && f[0] == "PPid:":
				ppid = f[1]
			}
		}
	}
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		cmdline = strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
	}
	if cmdline == "" {
		cmdline = "[" + strconv.Itoa(pid) + "]"
	}
	return uid, ppid, cmdline
}
