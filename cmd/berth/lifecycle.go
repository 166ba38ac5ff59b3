package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

func (c *cli) startCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start [SERVICE...]",
		Short: "Start existing containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, e, err := c.open(cmd.Context())
			if err != nil {
				return err
			}
			return e.Start(cmd.Context(), p, args)
		},
	}
}

// timeoutFlag adds -t/--timeout and returns a getter that is nil unless the
// flag was given (each container's stop_grace_period applies then).
func timeoutFlag(cmd *cobra.Command) func() *time.Duration {
	secs := cmd.Flags().IntP("timeout", "t", 10, "seconds to wait for a container to stop before killing it")
	return func() *time.Duration {
		if !cmd.Flags().Changed("timeout") {
			return nil
		}
		d := time.Duration(*secs) * time.Second
		return &d
	}
}

func (c *cli) stopCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stop [SERVICE...]",
		Short: "Stop running containers without removing them",
	}
	timeout := timeoutFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, e, err := c.open(cmd.Context())
		if err != nil {
			return err
		}
		return e.Stop(cmd.Context(), p, args, timeout())
	}
	return cmd
}

func (c *cli) restartCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restart [SERVICE...]",
		Short: "Restart containers",
	}
	timeout := timeoutFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, e, err := c.open(cmd.Context())
		if err != nil {
			return err
		}
		return e.Restart(cmd.Context(), p, args, timeout())
	}
	return cmd
}

func (c *cli) rmCommand() *cobra.Command {
	var force, stop bool
	cmd := &cobra.Command{
		Use:   "rm [SERVICE...]",
		Short: "Remove stopped containers",
	}
	timeout := timeoutFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, e, err := c.open(cmd.Context())
		if err != nil {
			return err
		}
		opts := project.RemoveOptions{Stop: stop, Timeout: timeout()}
		cs, err := e.Removable(p, args, opts)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			fmt.Fprintln(c.stderr, "No stopped containers")
			return nil
		}
		var names []string
		for _, ct := range cs {
			names = append(names, ct.Spec.Name)
		}
		if !force && c.interactive() {
			fmt.Fprintf(c.stderr, "Going to remove %s\n? Are you sure? [y/N] ", strings.Join(names, ", "))
			answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
			if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
				return nil
			}
		}
		return e.Remove(cmd.Context(), p, cs, opts)
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "don't ask to confirm removal")
	f.BoolVarP(&stop, "stop", "s", false, "stop the containers first, if needed")
	return cmd
}

// interactive reports whether a question can be asked on stdin.
func (c *cli) interactive() bool {
	f, ok := c.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// eachRunning applies fn to every live container of the services (all
// when none is named), printing done for each, and joins the errors.
func (c *cli) eachRunning(cmd *cobra.Command, services []string, what, done string, fn func(*runtime.Runtime, string) error) error {
	e, cs, err := c.containers(cmd, services, false)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("no running containers to %s", what)
	}
	var errs []error
	for _, ct := range cs {
		if err := fn(e.Runtime(), ct.Spec.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(c.stderr, " Container %s  %s\n", ct.Spec.Name, done)
	}
	return errors.Join(errs...)
}
