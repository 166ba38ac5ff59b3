package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/project"
)

// exitError carries a process exit code through cobra without a message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// cli holds what every command shares: the global flags and the streams.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	files       []string
	projectName string
	projectDir  string
	envFiles    []string
	profiles    []string
	noColor     bool
	// screen is set while a terminal UI owns the screen: the engine's
	// progress lines would tear it.
	screen atomic.Bool
	// transfers shows the progress of pulls and pushes (progress.go).
	transfers *transferPrinter
	// quietBuild silences the builder's progress (build -q).
	quietBuild atomic.Bool
}

func run(args []string) int {
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	// compose-go warns through logrus ("the attribute `version` is
	// obsolete"); print those as berth's own warnings.
	logrus.SetOutput(c.stderr)
	logrus.SetFormatter(warnFormatter{})
	root := c.rootCommand()
	root.SetArgs(args)
	// Ctrl-C and SIGTERM cancel the command's context: `logs -f` ends,
	// an `up` rolls back what it made, and berth exits as interrupted.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return 130
	}
	fmt.Fprintln(c.stderr, "Error: "+oneLine(err.Error()))
	return 1
}

// warnFormatter prints logrus entries as "WARN text", one line each.
type warnFormatter struct{}

func (warnFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return []byte(strings.ToUpper(e.Level.String()) + " " + oneLine(e.Message) + "\n"), nil
}

// oneLine keeps an error on one line: errors.Join and some libraries use newlines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Run Compose projects as isolated Linux containers, with no daemon",
		Long: "berth reads compose.yaml and runs every service as a real container (its own\n" +
			"namespaces, cgroup and overlay root), with no Docker daemon: the same file,\n" +
			"commands and flags as docker compose.",
		SilenceErrors: true,
		SilenceUsage:  true,
		// As docker compose: project flags go before the command
		// (`berth -f x.yaml logs -f`), so a command's own -f can mean
		// something else.
		TraverseChildren: true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	f := root.Flags()
	f.StringArrayVarP(&c.files, "file", "f", nil, "compose configuration files (repeatable, merged in order)")
	f.StringVarP(&c.projectName, "project-name", "p", "", "project name")
	f.StringVar(&c.projectDir, "project-directory", "", "alternate working directory (default: the first compose file's folder)")
	f.StringArrayVar(&c.envFiles, "env-file", nil, "alternate environment files")
	f.StringArrayVar(&c.profiles, "profile", nil, "profiles to enable")
	root.AddCommand(
		c.upCommand(), c.downCommand(), c.psCommand(), c.logsCommand(),
		c.startCommand(), c.stopCommand(), c.restartCommand(), c.rmCommand(),
		c.configCommand(), c.imagesCommand(), c.rmiCommand(), c.imageCommand(),
		c.lsCommand(), c.portCommand(), c.killCommand(), c.waitCommand(), c.topCommand(), c.runCommand(),
		c.execCommand(), c.pauseCommand(), c.unpauseCommand(), c.eventsCommand(), c.tuiCommand(),
		c.pullCommand(), c.pushCommand(), c.buildCommand(), c.builderCommand(), c.versionCommand(),
	)
	return root
}

// load reads the compose project with docker compose's option chain and
// prints the loader's warnings.
func (c *cli) load(ctx context.Context) (*types.Project, error) {
	p, warnings, err := project.Load(ctx, project.LoadOptions{
		Files:       c.files,
		ProjectName: c.projectName,
		ProjectDir:  c.projectDir,
		EnvFiles:    c.envFiles,
		Profiles:    c.profiles,
	})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintln(c.stderr, "WARN "+w)
	}
	return p, nil
}

// engine opens the state under BERTH_ROOT, printing progress to stderr.
func (c *cli) engine() (*project.Engine, error) {
	registry, err := registryOptions()
	if err != nil {
		return nil, err
	}
	if c.transfers == nil {
		c.transfers = newTransferPrinter(c.stderr)
	}
	return project.Open(project.Options{
		Root:         os.Getenv("BERTH_ROOT"),
		IfPrefix:     os.Getenv("BERTH_IFPREFIX"),
		AddressPools: os.Getenv(network.PoolsEnv),
		// Any other line ends the block of pulls being drawn.
		Events:      func(e project.Event) { c.transfers.done(); c.printEvent(e) },
		Registry:    registry,
		BuildOutput: buildWriter{c},
		Progress: func(e project.ImageEvent) {
			if !c.screen.Load() {
				c.transfers.event(e)
			}
		},
	})
}

// open loads the project and opens the engine, what most commands start with.
func (c *cli) open(ctx context.Context) (*types.Project, *project.Engine, error) {
	p, err := c.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	e, err := c.engine()
	if err != nil {
		return nil, nil, err
	}
	return p, e, nil
}

func (c *cli) printEvent(e project.Event) {
	if c.screen.Load() {
		return
	}
	switch e.Kind {
	case project.Warning:
		fmt.Fprintln(c.stderr, "WARN "+e.Text)
	case project.ErrorEvent:
		fmt.Fprintf(c.stderr, " %s  Error %s\n", e.Object, oneLine(e.Text))
	default:
		fmt.Fprintf(c.stderr, " %s  %s\n", e.Object, e.Kind)
	}
}

// colors reports whether to write ANSI colours to w.
func (c *cli) colors(w io.Writer) bool {
	if c.noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the berth version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(c.stdout, "berth version "+project.Version)
			return nil
		},
	}
}
