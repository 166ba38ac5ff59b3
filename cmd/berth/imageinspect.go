package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

// imageInspect is what `image inspect` prints of an image, with the names
// and layout of docker's image inspect (API 1.47: the config of an OCI
// image, not a container's), so that templates written for docker work.
type imageInspect struct {
	Id            string // docker's spelling, which templates use
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string `json:",omitempty"`
	DockerVersion string
	Author        string
	Config        inspectConfig
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	OsVersion     string `json:",omitempty"`
	Size          int64
	RootFS        inspectRootFS
}

type inspectConfig struct {
	User         string              `json:",omitempty"`
	ExposedPorts map[string]struct{} `json:",omitempty"`
	Env          []string            `json:",omitempty"`
	Entrypoint   []string            `json:",omitempty"`
	Cmd          []string            `json:",omitempty"`
	Volumes      map[string]struct{} `json:",omitempty"`
	WorkingDir   string              `json:",omitempty"`
	Labels       map[string]string   `json:",omitempty"`
	StopSignal   string              `json:",omitempty"`
	ArgsEscaped  bool                `json:",omitempty"`
	Healthcheck  *v1.HealthConfig    `json:",omitempty"`
	OnBuild      []string            `json:",omitempty"`
	Shell        []string            `json:",omitempty"`
}

type inspectRootFS struct {
	Type   string
	Layers []string `json:",omitempty"`
}

func newImageInspect(img image.Image, cf *v1.ConfigFile) imageInspect {
	out := imageInspect{
		Id:            img.ID,
		RepoTags:      []string{},
		RepoDigests:   []string{},
		DockerVersion: cf.DockerVersion,
		Author:        cf.Author,
		Architecture:  cf.Architecture,
		Variant:       cf.Variant,
		Os:            cf.OS,
		OsVersion:     cf.OSVersion,
		Size:          img.Size,
		RootFS:        inspectRootFS{Type: cf.RootFS.Type},
	}
	for _, t := range img.Tags {
		out.RepoTags = append(out.RepoTags, familiar(t))
	}
	for _, d := range img.Digests {
		out.RepoDigests = append(out.RepoDigests, familiar(d))
	}
	if n := len(cf.History); n > 0 {
		out.Comment = cf.History[n-1].Comment
	}
	if !cf.Created.IsZero() {
		out.Created = cf.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range cf.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	c := cf.Config
	out.Config = inspectConfig{
		User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
		Volumes: c.Volumes, WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
		ArgsEscaped: c.ArgsEscaped, Healthcheck: c.Healthcheck, OnBuild: c.OnBuild, Shell: c.Shell,
	}
	return out
}

// familiar is docker's short form of a normalised reference: "bb:latest",
// "redis@sha256:…".
func familiar(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(named)
}

func (c *cli) imageInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [-f FORMAT] IMAGE...",
		Short: "Show the details of images as JSON, or through a Go template",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tmpl *template.Template
			if format != "" {
				var err error
				if tmpl, err = template.New("").Funcs(templateFuncs()).Parse(format); err != nil {
					return fmt.Errorf("template parsing error: %w", err)
				}
			}
			e, err := c.engine()
			if err != nil {
				return err
			}
			store := e.Images()
			// As docker: the images found are printed, then an error for
			// each that is not.
			var found []imageInspect
			var errs []error
			for _, ref := range args {
				img, err := store.Resolve(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				cf, err := store.ConfigFile(img.ID)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				found = append(found, newImageInspect(img, cf))
			}
			if tmpl != nil {
				for _, v := range found {
					var buf bytes.Buffer
					if err := tmpl.Execute(&buf, v); err != nil {
						return err
					}
					fmt.Fprintln(c.stdout, buf.String())
				}
			} else {
				if found == nil {
					found = []imageInspect{}
				}
				data, err := json.MarshalIndent(found, "", "    ")
				if err != nil {
					return err
				}
				fmt.Fprintln(c.stdout, string(data))
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
	return cmd
}

// templateFuncs are the functions docker offers in --format templates.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(v); err != nil {
				return "", err
			}
			return strings.TrimSpace(buf.String()), nil
		},
		"split": strings.Split,
		"join":  strings.Join,
		"lower": strings.ToLower,
		"upper": strings.ToUpper,
		"title": func(s string) string {
			words := strings.Fields(s)
			for i, w := range words {
				r, n := utf8.DecodeRuneInString(w)
				words[i] = strings.ToUpper(string(r)) + w[n:]
			}
			return strings.Join(words, " ")
		},
		"pad": func(s string, before, after int) string {
			return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
		},
		"truncate": func(s string, n int) string {
			if r := []rune(s); len(r) > n {
				return string(r[:n])
			}
			return s
		},
	}
}

func (c *cli) imageHistoryCommand() *cobra.Command {
	var noTrunc, quiet, human bool
	cmd := &cobra.Command{
		Use:   "history [--no-trunc] [-q] IMAGE",
		Short: "Show the history of an image: its layers and the instruction that made each",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			steps, err := e.Images().History(args[0])
			if err != nil {
				return err
			}
			id := func(s string) string {
				switch {
				case s == "":
					return "<missing>"
				case noTrunc:
					return s
				}
				return project.ShortID(s)
			}
			if quiet {
				for _, h := range steps {
					fmt.Fprintln(c.stdout, id(h.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.stdout, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for _, h := range steps {
				createdBy := strings.ReplaceAll(h.CreatedBy, "\t", " ")
				if !noTrunc {
					createdBy = ellipsis(createdBy, 45)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id(h.ID), historyCreated(h.Created, human), createdBy, historySize(h.Size, human), h.Comment)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	return cmd
}

func historyCreated(t time.Time, human bool) string {
	switch {
	case t.IsZero():
		return "N/A"
	case human:
		return units.HumanDuration(time.Since(t)) + " ago"
	}
	return t.Local().Format(time.RFC3339)
}

func historySize(n int64, human bool) string {
	if human {
		return units.HumanSizeWithPrecision(float64(n), 3)
	}
	return strconv.FormatInt(n, 10)
}

// ellipsis shortens s to n characters, its last one "…", as docker's tables.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
