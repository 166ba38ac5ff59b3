package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

func (c *cli) imagesCommand() *cobra.Command {
	var o imagesOptions
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List images in the local store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			dangling, err := danglingFilter(o.filters)
			if err != nil {
				return err
			}
			list, err := e.Images().ListAll()
			if err != nil {
				return err
			}
			rows := imageRows(list, o.digests, dangling)
			id := project.ShortID
			if o.noTrunc {
				id = func(s string) string { return s }
			}
			if o.quiet {
				for _, r := range rows {
					fmt.Fprintln(c.stdout, id(r.img.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 8, 3, ' ', 0)
			if o.digests {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
			} else {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range rows {
				created := "N/A"
				if !r.img.Created.IsZero() {
					created = units.HumanDuration(time.Since(r.img.Created)) + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t", r.repo, r.tag)
				if o.digests {
					fmt.Fprintf(tw, "%s\t", r.digest)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", id(r.img.ID), created, units.HumanSizeWithPrecision(float64(r.img.Size), 3))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVarP(&o.all, "all", "a", false, "show all images (berth keeps no intermediate images: the same list)")
	f.BoolVar(&o.digests, "digests", false, "show digests")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate output")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "filter output based on conditions provided (dangling=true|false)")
	return cmd
}

type imagesOptions struct {
	quiet, all, digests, noTrunc bool
	filters                      []string
}

// danglingFilter reads `--filter dangling=true|false`, the one filter
// berth knows: nil when not given.
func danglingFilter(filters []string) (*bool, error) {
	var out *bool
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		if k != "dangling" {
			return nil, fmt.Errorf("invalid filter %q: berth filters images only by dangling=true|false", f)
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter %q: dangling is true or false", f)
		}
		out = &b
	}
	return out, nil
}

// imageRow is one line of `images`: an image under one repository and tag.
type imageRow struct {
	repo, tag, digest string
	img               image.Image
}

// imageRows turns the store's images (one entry per tag, as ListAll gives
// them) into docker's rows: a row per repository and tag (per repository,
// tag and digest with digests), a repository known only by digest as
// <none> tag, and a dangling image as <none> <none>.
func imageRows(list []image.Image, digests bool, dangling *bool) []imageRow {
	var rows []imageRow
	seen := map[string]bool{}
	for _, img := range list {
		if seen[img.ID] || (dangling != nil && *dangling != img.Dangling) {
			continue
		}
		seen[img.ID] = true
		if img.Dangling {
			rows = append(rows, imageRow{repo: none, tag: none, digest: none, img: img})
			continue
		}
		repoTags := map[string][]string{}
		for _, t := range img.Tags {
			if named, err := reference.ParseNormalizedNamed(t); err == nil {
				if nt, ok := named.(reference.NamedTagged); ok {
					repo := reference.FamiliarName(named)
					repoTags[repo] = append(repoTags[repo], nt.Tag())
				}
			}
		}
		repoDigests := map[string][]string{}
		for _, d := range img.Digests {
			if named, err := reference.ParseNormalizedNamed(d); err == nil {
				if c, ok := named.(reference.Canonical); ok {
					repo := reference.FamiliarName(named)
					repoDigests[repo] = append(repoDigests[repo], c.Digest().String())
				}
			}
		}
		for repo, tags := range repoTags {
			ds := repoDigests[repo]
			delete(repoDigests, repo)
			if !digests || len(ds) == 0 {
				ds = []string{none}
			}
			for _, tag := range tags {
				for _, d := range ds {
					rows = append(rows, imageRow{repo: repo, tag: tag, digest: d, img: img})
				}
			}
		}
		for repo, ds := range repoDigests {
			if !digests {
				ds = []string{""}
			}
			for _, d := range ds {
				rows = append(rows, imageRow{repo: repo, tag: none, digest: d, img: img})
			}
		}
	}
	// By repository and tag, <none> last.
	slices.SortFunc(rows, func(a, b imageRow) int {
		return cmp.Or(
			cmp.Compare(noneLast(a.repo), noneLast(b.repo)), cmp.Compare(a.repo, b.repo),
			cmp.Compare(noneLast(a.tag), noneLast(b.tag)), cmp.Compare(a.tag, b.tag),
			cmp.Compare(a.digest, b.digest), cmp.Compare(a.img.ID, b.img.ID))
	})
	return rows
}

// none is what docker shows for a missing repository, tag or digest.
const none = "<none>"

func noneLast(s string) int {
	if s == none {
		return 1
	}
	return 0
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
		Short: "Manage images: import, load, ls, rm, prune, inspect, history, pull, push, tag",
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
	cmd.AddCommand(importCmd, loadCmd, lsCmd, rmCmd, c.imagePruneCommand(), c.imageInspectCommand(), c.imageHistoryCommand(),
		c.imagePullCommand(), c.imagePushCommand(), c.imageTagCommand())
	return cmd
}

// docker's warnings before a prune.
const (
	pruneDanglingWarning = "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
	pruneAllWarning      = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
)

func (c *cli) imagePruneCommand() *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [-a] [-f]",
		Short: "Remove dangling images (-a: every image no container uses) and unused layers",
		Long: "Remove the images that have no tag and were not pulled by digest, or with -a every\n" +
			"image that no container uses (stopped ones count), then every blob and layer that\n" +
			"no image uses. The build cache is kept.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			warning := pruneDanglingWarning
			if all {
				warning = pruneAllWarning
			}
			if !force && !c.confirm(warning) {
				return errors.New("image prune has been cancelled")
			}
			cs, err := e.Runtime().List()
			if err != nil {
				return err
			}
			inUse := map[string]bool{}
			for _, ct := range cs {
				inUse[ct.Spec.ImageID] = true
			}
			r, err := e.Images().Prune(image.PruneOptions{All: all, InUse: func(id string) bool { return inUse[id] }})
			if len(r.Deleted) > 0 {
				fmt.Fprintln(c.stdout, "Deleted Images:")
				for _, d := range r.Deleted {
					if d.Untagged != "" {
						fmt.Fprintln(c.stdout, "untagged: "+d.Untagged)
					} else {
						fmt.Fprintln(c.stdout, "deleted: "+d.Deleted)
					}
				}
				fmt.Fprintln(c.stdout)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "Total reclaimed space:", units.HumanSize(float64(r.Reclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

// confirm asks a yes/no question on stdout, as docker does, and reads the
// answer from stdin: only y or yes is yes.
func (c *cli) confirm(question string) bool {
	fmt.Fprint(c.stdout, question+" [y/N] ")
	answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
	if f, ok := c.stdin.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		// The answer was not echoed.
		fmt.Fprintln(c.stdout)
	}
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
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
