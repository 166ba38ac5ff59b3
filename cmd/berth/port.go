package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
)

func (c *cli) portCommand() *cobra.Command {
	var protocol string
	var index int
	cmd := &cobra.Command{
		Use:   "port SERVICE PRIVATE_PORT",
		Short: "Print the host address a container's port is published on",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			private, err := strconv.ParseUint(args[1], 10, 16)
			if err != nil {
				return fmt.Errorf("private port %q is not a port number", args[1])
			}
			_, cs, err := c.containers(cmd, []string{args[0]}, true)
			if err != nil {
				return err
			}
			for _, ct := range cs {
				if n, _ := strconv.Atoi(ct.Spec.Labels[project.LabelNumber]); n != index {
					continue
				}
				if addr := project.PublishedPort(ct, uint16(private), protocol); addr != "" {
					fmt.Fprintln(c.stdout, addr)
					return nil
				}
				return fmt.Errorf("no port %d/%s published for service %q", private, protocol, args[0])
			}
			return fmt.Errorf("no container %d of service %q", index, args[0])
		},
	}
	cmd.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	cmd.Flags().IntVar(&index, "index", 1, "the container's number, for a service with several")
	return cmd
}
