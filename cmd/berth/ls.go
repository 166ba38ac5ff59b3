package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func (c *cli) lsCommand() *cobra.Command {
	var all, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List projects that have containers on this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			list, err := e.Projects()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 8, 3, ' ', 0)
			if !quiet && format == "table" {
				fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG FILES")
			}
			for _, p := range list {
				if !all && p.Running == 0 {
					continue
				}
				switch {
				case quiet:
					fmt.Fprintln(c.stdout, p.Name)
				case format == "json":
					if err := json.NewEncoder(c.stdout).Encode(p); err != nil {
						return err
					}
				case format == "table":
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Status, p.ConfigFiles)
				default:
					return fmt.Errorf("--format %q: use table or json", format)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "also list projects with no running container")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show project names")
	f.StringVar(&format, "format", "table", "table or json")
	return cmd
}
