package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
)

func (c *cli) eventsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events [--json] [SERVICE...]",
		Short: "Stream the events of the project's containers as they happen",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := c.projectNameOnly(cmd)
			if err != nil {
				return err
			}
			e, err := c.engine()
			if err != nil {
				return err
			}
			return e.FollowEvents(cmd.Context(), name, func(ev project.ContainerEvent) error {
				if len(args) > 0 && !slices.Contains(args, ev.Service) {
					return nil
				}
				attrs := map[string]string{"name": ev.Container}
				if ev.Image != "" {
					attrs["image"] = ev.Image
				}
				maps.Copy(attrs, ev.Attributes)
				action := ev.Action
				if h, ok := attrs["healthStatus"]; ok {
					// docker's spelling of a health event.
					action += ": " + h
					delete(attrs, "healthStatus")
				}
				if asJSON {
					// docker compose's fields.
					data, err := json.Marshal(map[string]any{
						"time":       ev.Time,
						"type":       "container",
						"service":    ev.Service,
						"id":         ev.ID,
						"action":     action,
						"attributes": attrs,
					})
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(c.stdout, "%s\n", data)
					return err
				}
				var list []string
				for _, k := range slices.Sorted(maps.Keys(attrs)) {
					list = append(list, k+"="+attrs[k])
				}
				_, err := fmt.Fprintf(c.stdout, "%s container %s %s (%s)\n",
					ev.Time.Local().Format("2006-01-02 15:04:05.000000"), action, ev.ID, strings.Join(list, ", "))
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as a line of JSON")
	return cmd
}
