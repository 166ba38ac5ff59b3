package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

// insecureEnv lists the registries berth may reach over plain HTTP, or over
// HTTPS without checking their certificate, as docker's
// insecure-registries: "host", "host:port" or a CIDR, comma-separated.
// Registries on loopback need not be listed.
const insecureEnv = "BERTH_INSECURE_REGISTRIES"

// registryOptions are the registry settings from the environment.
func registryOptions() (image.RegistryOptions, error) {
	var opts image.RegistryOptions
	for _, entry := range strings.Split(os.Getenv(insecureEnv), ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		bare := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(entry, "http://"), "https://"), "/")
		if _, _, err := net.ParseCIDR(bare); err != nil && (strings.ContainsAny(bare, "/@?# ") || bare == "") {
			return opts, fmt.Errorf("%s: %q: want host, host:port or a CIDR (10.0.0.0/8)", insecureEnv, entry)
		}
		opts.Insecure = append(opts.Insecure, entry)
	}
	return opts, nil
}

func (c *cli) pullCommand() *cobra.Command {
	var opts project.PullOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] [SERVICE...]",
		Short: "Pull service images",
		Long: "Pull the images of the services from their registries, in parallel. Services\n" +
			"without image, or whose pull_policy is never or build, are skipped.",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.open(ctx)
			if err != nil {
				return err
			}
			c.transfers.quiet = quiet
			defer c.transfers.done()
			opts.Services = args
			return e.Pull(ctx, p, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "pull without printing progress information")
	f.BoolVar(&opts.IgnoreFailures, "ignore-pull-failures", false, "pull what it can and ignore images with pull failures")
	f.StringVar(&opts.Policy, "policy", "", `apply pull policy ("missing"|"always")`)
	f.BoolVar(&opts.IncludeDeps, "include-deps", false, "also pull services declared as dependencies")
	f.BoolVar(&opts.IgnoreBuildable, "ignore-buildable", false, "ignore images that can be built")
	return cmd
}

// imagePullCommand is `berth image pull`, as `docker pull`.
func (c *cli) imagePullCommand() *cobra.Command {
	var quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
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
			ref := args[0]
			named, err := reference.ParseNormalizedNamed(ref)
			if err != nil {
				return fmt.Errorf("pull %s: %w", ref, err)
			}
			show := newTransferPrinter(c.stdout)
			show.docker, show.quiet = true, quiet
			if !quiet {
				if reference.IsNameOnly(named) {
					fmt.Fprintln(c.stdout, "Using default tag: latest")
				}
				named = reference.TagNameOnly(named)
				id := ""
				if tagged, ok := named.(reference.Tagged); ok {
					id = tagged.Tag()
				}
				if digested, ok := named.(reference.Digested); ok {
					id = digested.Digest().String()
				}
				fmt.Fprintf(c.stdout, "%s: Pulling from %s\n", id, reference.Path(named))
			}
			had, _ := e.Images().Resolve(ref)
			img, err := e.Images().Pull(cmd.Context(), ref, image.PullOptions{RegistryOptions: registry, Platform: platform, Progress: show.layer(ref)})
			show.done()
			if err != nil {
				return err
			}
			if !quiet {
				for _, d := range img.Digests {
					if strings.HasPrefix(d, reference.TrimNamed(named).Name()+"@") {
						fmt.Fprintln(c.stdout, "Digest: "+strings.TrimPrefix(d, reference.TrimNamed(named).Name()+"@"))
					}
				}
				status := "Downloaded newer image for "
				if had.ID == img.ID {
					status = "Image is up to date for "
				}
				fmt.Fprintln(c.stdout, "Status: "+status+reference.FamiliarString(named))
			}
			fmt.Fprintln(c.stdout, named.String())
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	cmd.Flags().StringVar(&platform, "platform", "", "the platform to take from a multi-platform image (linux/arm64)")
	return cmd
}
