package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
)

func (c *cli) configCommand() *cobra.Command {
	var format string
	var services, volumes, quiet bool
	cmd := &cobra.Command{
		Use:     "config",
		Aliases: []string{"convert"},
		Short:   "Validate the compose file and print the resolved project",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := c.load(cmd.Context())
			if err != nil {
				return err
			}
			switch {
			case quiet:
				return nil
			case services:
				for _, s := range project.ServiceNames(p) {
					fmt.Fprintln(c.stdout, s)
				}
				return nil
			case volumes:
				for _, v := range p.VolumeNames() {
					fmt.Fprintln(c.stdout, v)
				}
				return nil
			}
			if format != "yaml" && format != "json" {
				return fmt.Errorf("--format %q: use yaml or json", format)
			}
			out, err := project.MarshalConfig(p, format)
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "yaml", "yaml or json")
	f.BoolVar(&services, "services", false, "print the service names, one per line")
	f.BoolVar(&volumes, "volumes", false, "print the volume names, one per line")
	f.BoolVarP(&quiet, "quiet", "q", false, "only validate the configuration, print nothing")
	return cmd
}
