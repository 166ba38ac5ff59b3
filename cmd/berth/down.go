package main

import (
	"errors"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
)

func (c *cli) downCommand() *cobra.Command {
	var opts project.DownOptions
	var timeout int
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop and remove containers (and with -v, volumes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// down works without a compose file when -p names the project,
			// so that a deleted or broken file never strands containers.
			var p *types.Project
			name := c.projectName
			loaded, err := c.load(ctx)
			switch {
			case err == nil:
				p, name = loaded, loaded.Name
			case name != "" && errors.Is(err, project.ErrNoConfigFile):
			default:
				return err
			}
			e, err := c.engine()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("timeout") {
				d := time.Duration(timeout) * time.Second
				opts.Timeout = &d
			}
			return e.Down(ctx, name, p, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.RemoveOrphans, "remove-orphans", false, "remove containers of services not in the compose file")
	f.BoolVarP(&opts.Volumes, "volumes", "v", false, "remove the named volumes declared in the compose file")
	f.IntVarP(&timeout, "timeout", "t", 10, "seconds to wait for a container to stop before killing it")
	return cmd
}
