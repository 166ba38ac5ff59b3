package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
)

func (c *cli) configCommand() *cobra.Command {
	var format, hash string
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
			case hash != "":
				return c.printHashes(p, hash)
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
	f.StringVar(&hash, "hash", "", `print the config hash of these services ("*" for all, or SVC1,SVC2)`)
	return cmd
}

// printHashes prints "service hash" lines, sorted by service, as docker
// compose's config --hash: the hash up compares to decide on a recreate.
func (c *cli) printHashes(p *types.Project, list string) error {
	var names []string
	if list == "*" {
		names = project.ServiceNames(p)
	} else {
		for _, name := range strings.Split(list, ",") {
			if _, ok := p.Services[name]; !ok {
				return fmt.Errorf("--hash: %w: %s", project.ErrNoSuchService, name)
			}
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		hash, err := project.ServiceHash(p.Services[name])
		if err != nil {
			return fmt.Errorf("service %q: %w", name, err)
		}
		fmt.Fprintf(c.stdout, "%s %s\n", name, hash)
	}
	return nil
}
