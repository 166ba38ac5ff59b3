package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

func (c *cli) imagesCommand() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List images in the local store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			list, err := e.Images().List()
			if err != nil {
				return err
			}
			if quiet {
				for _, img := range list {
					fmt.Fprintln(c.stdout, project.ShortID(img.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, img := range list {
				created := "N/A"
				if !img.Created.IsZero() {
					created = units.HumanDuration(time.Since(img.Created)) + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Repo, img.Tag, project.ShortID(img.ID), created, units.HumanSizeWithPrecision(float64(img.Size), 3))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	return cmd
}

func (c *cli) rmiCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images (refused while a container uses them)",
		Args:  cobra.MinimumNArgs(1),
		RunE:  c.removeImages,
	}
	return cmd
}

func (c *cli) removeImages(cmd *cobra.Command, args []string) error {
	e, err := c.engine()
	if err != nil {
		return err
	}
	for _, ref := range args {
		lines, err := e.RemoveImage(ref)
		if err != nil {
			return err
		}
		for _, l := range lines {
			fmt.Fprintln(c.stdout, l)
		}
	}
	return nil
}

func (c *cli) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images: import, load, ls, rm, pull, push, tag",
	}
	var changes []string
	importCmd := &cobra.Command{
		Use:   "import FILE|- [REPOSITORY[:TAG]]",
		Short: "Make an image from a root filesystem tarball",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			r, closer, err := c.openInput(args[0])
			if err != nil {
				return err
			}
			defer closer()
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			img, err := e.Images().Import(cmd.Context(), r, ref, image.ImportOptions{Changes: changes})
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			fmt.Fprintln(c.stdout, img.ID)
			return nil
		},
	}
	importCmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL)")

	var input string
	loadCmd := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Load images from a `docker save` tarball or an OCI archive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			r, closer, err := c.openInput(input)
			if err != nil {
				return err
			}
			defer closer()
			imgs, err := e.Images().Load(cmd.Context(), r)
			if err != nil {
				return fmt.Errorf("load %s: %w", input, err)
			}
			for _, img := range imgs {
				if img.Ref != "" {
					fmt.Fprintf(c.stdout, "Loaded image: %s:%s\n", img.Repo, img.Tag)
				} else {
					fmt.Fprintf(c.stdout, "Loaded image ID: %s\n", img.ID)
				}
			}
			return nil
		},
	}
	loadCmd.Flags().StringVarP(&input, "input", "i", "-", "read from a tar archive file instead of stdin")

	lsCmd := c.imagesCommand()
	lsCmd.Use, lsCmd.Aliases = "ls", []string{"list"}
	rmCmd := c.rmiCommand()
	rmCmd.Use = "rm IMAGE..."
	cmd.AddCommand(importCmd, loadCmd, lsCmd, rmCmd, c.imagePullCommand(), c.imagePushCommand(), c.imageTagCommand())
	return cmd
}

// openInput opens a file argument, "-" being stdin.
func (c *cli) openInput(name string) (io.Reader, func(), error) {
	if name == "-" {
		return c.stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}
