package main

import (
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

func (c *cli) pushCommand() *cobra.Command {
	var opts project.PushOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] [SERVICE...]",
		Short: "Push service images",
		Long: "Push the images of the services to their registries, as docker compose does:\n" +
			"the services that have both build and image; the others are skipped.",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.open(ctx)
			if err != nil {
				return err
			}
			c.transfers.quiet, c.transfers.verb = quiet, "Pushing"
			defer c.transfers.done()
			opts.Services = args
			return e.Push(ctx, p, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "push without printing progress information")
	f.BoolVar(&opts.IgnoreFailures, "ignore-push-failures", false, "push what it can and ignore images with push failures")
	f.BoolVar(&opts.IncludeDeps, "include-deps", false, "also push the images of the services' dependencies")
	return cmd
}

// imagePushCommand is `berth image push`, as `docker push`.
func (c *cli) imagePushCommand() *cobra.Command {
	var quiet, allTags bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			registry, err := registryOptions()
			if err != nil {
				return err
			}
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return fmt.Errorf("push %s: %w", args[0], err)
			}
			if _, ok := named.(reference.Digested); ok {
				return fmt.Errorf("push %s: a digest cannot be pushed: push a tag", args[0])
			}
			refs := []string{reference.TagNameOnly(named).String()}
			if allTags {
				if _, ok := named.(reference.Tagged); ok {
					return fmt.Errorf("push %s: --all-tags takes a name without a tag", args[0])
				}
				if refs, err = tagsOf(e.Images(), named); err != nil {
					return err
				}
			}
			if !quiet {
				fmt.Fprintf(c.stdout, "The push refers to repository [%s]\n", named.Name())
			}
			for _, ref := range refs {
				show := newTransferPrinter(c.stdout)
				show.docker, show.quiet, show.verb = true, quiet, "Pushing"
				pushed, err := e.Images().Push(cmd.Context(), ref, image.PushOptions{RegistryOptions: registry, Progress: show.layer(ref)})
				show.done()
				if err != nil {
					return err
				}
				if quiet {
					fmt.Fprintln(c.stdout, pushed.Ref)
					continue
				}
				tag := ""
				if n, err := reference.ParseNormalizedNamed(pushed.Ref); err == nil {
					if tagged, ok := n.(reference.Tagged); ok {
						tag = tagged.Tag()
					}
				}
				fmt.Fprintf(c.stdout, "%s: digest: %s size: %d\n", tag, pushed.Digest, pushed.Size)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	cmd.Flags().BoolVarP(&allTags, "all-tags", "a", false, "push all the tags of the repository")
	return cmd
}

// tagsOf is the tags of the store's images in named's repository.
func tagsOf(s *image.Store, named reference.Named) ([]string, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, img := range list {
		if n, err := reference.ParseNormalizedNamed(img.Ref); err == nil && n.Name() == named.Name() {
			out = append(out, img.Ref)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("push %s: %w: no tag of %s in the local store", reference.FamiliarString(named), image.ErrNotFound, reference.FamiliarString(named))
	}
	return out, nil
}

// imageTagCommand is `berth image tag`, as `docker tag`.
func (c *cli) imageTagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Give an image another name (a tag), for instance to push it to a registry",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			err = e.Images().Tag(args[0], args[1])
			if errors.Is(err, image.ErrNotFound) {
				return fmt.Errorf("%w: load, import or pull it first", err)
			}
			return err
		},
	}
}
