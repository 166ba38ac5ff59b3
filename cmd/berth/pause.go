package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/runtime"
)

func (c *cli) pauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause [SERVICE...]",
		Short: "Freeze the processes of the services' containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachRunning(cmd, args, "pause", "Paused", func(rt *runtime.Runtime, name string) error {
				return rt.Pause(cmd.Context(), name)
			})
		},
	}
}

func (c *cli) unpauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unpause [SERVICE...]",
		Short: "Thaw the paused containers of the services",
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachRunning(cmd, args, "unpause", "Unpaused", func(rt *runtime.Runtime, name string) error {
				return rt.Unpause(cmd.Context(), name)
			})
		},
	}
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
