package main

import (
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
