package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime"
)

// Labels of the containers that RUN steps run in: a container whose
// builder died is removed by the next build.
const (
	labelBuild      = "berth.build"
	labelBuilderPID = "berth.build.pid"
	// labelBuilderStart is the builder's start time, in clock ticks after
	// boot (/proc/PID/stat): with the PID, it names the process.
	labelBuilderStart = "berth.build.start"
)

// run runs a RUN step in a container of the stage's root, and commits the
// container's upper directory as the step's layer.
func (b *builder) run(ctx context.Context, st *stage, c *instructions.RunCommand, v *vertex) error {
	network := b.opts.Network
	for _, f := range c.FlagsUsed {
		if f != "network" {
			return fmt.Errorf("%w: RUN --%s is not supported by berth", ErrDockerfile, f)
		}
	}
	if n := instructions.GetNetwork(c); n != "" {
		network = string(n)
	}
	switch network {
	case "", "default", "host", "none":
	default:
		return fmt.Errorf("%w: RUN --network=%s: berth runs with \"default\", \"host\" or \"none\"", ErrDockerfile, network)
	}
	args, err := runArgs(b, st, c)
	if err != nil {
		return err
	}
	createdBy := "RUN " + runString(args, st)
	if network == "none" {
		// What the command could reach changes what it makes.
		createdBy += " # network=none"
	}
	key := cacheKey(st.id, createdBy, "")
	if ok, err := b.reuse(st, key, v); err != nil || ok {
		return err
	}
	layers, err := b.layerDirs(st)
	if err != nil {
		return err
	}
	spec := runtime.Spec{
		Name:        "berth-build-" + randomHex(6),
		Hostname:    "buildkitsandbox",
		Labels:      builderLabels(),
		Image:       "build step",
		ImageID:     st.id,
		Layers:      layers,
		Args:        args,
		Env:         b.runEnv(st),
		Cwd:         st.cf.Config.WorkingDir,
		User:        st.cf.Config.User,
		HostNetwork: network != "none",
	}
	container, err := b.rt.Create(ctx, spec)
	if err != nil {
		return err
	}
	defer func() {
		// Not ctx: a cancelled build must still take its container away.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.rt.Delete(dctx, spec.Name)
	}()
	if err := b.runToEnd(ctx, spec.Name, v); err != nil {
		return err
	}
	c2, err := b.rt.Get(spec.Name)
	if err != nil {
		return err
	}
	if c2.State.ExitCode != 0 || c2.State.Error != "" {
		why := fmt.Sprintf("exit code %d", c2.State.ExitCode)
		if c2.State.Error != "" {
			why = c2.State.Error + ": " + why
		}
		return fmt.Errorf("%w: process %q did not complete successfully: %s", ErrRunFailed, strings.Join(args, " "), why)
	}
	upper := container.UpperDir()
	if err := b.cleanUpper(st, upper); err != nil {
		return fmt.Errorf("read the step's changes: %w", err)
	}
	if err := b.commit(ctx, st, key, st.cf.DeepCopy(), upper, createdBy); err != nil {
		return err
	}
	v.done()
	return nil
}

// runArgs is the command of a RUN: exec form as is, shell form (and a
// heredoc as the whole command) run by the stage's shell.
func runArgs(b *builder, st *stage, c *instructions.RunCommand) ([]string, error) {
	cmd := c.ShellDependantCmdLine
	if len(c.Files) > 0 {
		if len(cmd.CmdLine) != 1 || !cmd.PrependShell || parser.MustParseHeredoc(cmd.CmdLine[0]) == nil {
			return nil, fmt.Errorf("%w: RUN with several heredocs, or a heredoc inside a command, is not supported by berth", ErrDockerfile)
		}
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		cmd.CmdLine = []string{data}
	}
	args := b.withShell(st, cmd)
	if len(args) == 0 || (len(args) == 1 && args[0] == "") {
		return nil, fmt.Errorf("%w: RUN needs a command", ErrDockerfile)
	}
	return args, nil
}

// runString is a RUN's history line, as BuildKit writes it: the ARGs of
// the stage first ("|2 A=1 B=2 /bin/sh -c …"), since what they hold
// changes what the command does.
func runString(args []string, st *stage) string {
	var argEnv []string
	for _, kv := range st.env {
		k, _, _ := strings.Cut(kv, "=")
		if _, inImage := envList(st.cf.Config.Env).Get(k); !inImage {
			argEnv = append(argEnv, kv)
		}
	}
	if len(argEnv) > 0 {
		argEnv = append([]string{"|" + strconv.Itoa(len(argEnv))}, argEnv...)
	}
	return strings.Join(append(argEnv, args...), " ")
}

// runToEnd starts the container, prints its output as the step's lines and
// waits for its end.
func (b *builder) runToEnd(ctx context.Context, name string, v *vertex) error {
	if err := b.rt.Start(ctx, name); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The state records why (and the exit code docker gives it).
		if c, gerr := b.rt.Get(name); gerr == nil && c.State.Error != "" {
			return nil
		}
		return err
	}
	err := b.rt.ReadLogs(ctx, name, runtime.LogOptions{Tail: -1, Follow: true}, func(e runtime.LogEntry) error {
		v.log(string(e.Text))
		return nil
	})
	if err != nil {
		return err
	}
	return ctx.Err()
}

// mountStubs are what the container's start makes in its root when the
// image lacks them: mount points, and the files its /etc/hosts,
// /etc/hostname and /etc/resolv.conf are bound on. BuildKit leaves them out
// of the layer; so does berth, when they are empty and new.
var mountStubs = []string{"etc/resolv.conf", "etc/hosts", "etc/hostname", "proc", "dev", "sys"}

// cleanUpper takes out of a RUN's upper directory what only the container's
// start made: the mount stubs, and then the directories left empty that the
// layers below have alike (overlayfs copied them up only to add a stub).
func (b *builder) cleanUpper(st *stage, upper string) error {
	lower, err := b.view(st)
	if err != nil {
		return err
	}
	defer lower.close()
	for _, stub := range mountStubs {
		p := filepath.Join(upper, stub)
		var s unix.Stat_t
		if err := unix.Lstat(p, &s); err != nil {
			continue
		}
		if n, _, err := lower.resolve(stub, false); err != nil || n != nil {
			continue
		}
		switch s.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if s.Size == 0 {
				os.Remove(p)
			}
		case unix.S_IFDIR:
			os.Remove(p) // only if empty
		}
	}
	return pruneDirs(lower, upper, ".")
}

// pruneDirs removes, under rel of upper, the directories that hold nothing
// and that the lower layers have with the same owner and mode (not opaque:
// an opaque one empties what is below).
func pruneDirs(lower *fsView, upper, rel string) error {
	p := filepath.Join(upper, rel)
	entries, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			if err := pruneDirs(lower, upper, path.Join(rel, e.Name())); err != nil {
				return err
			}
		}
	}
	if rel == "." {
		return nil
	}
	if entries, err = os.ReadDir(p); err != nil || len(entries) > 0 {
		return err
	}
	if buf := make([]byte, 1); func() bool {
		n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf)
		return err == nil && n == 1 && buf[0] == 'y'
	}() {
		return nil
	}
	var s unix.Stat_t
	if err := unix.Lstat(p, &s); err != nil {
		return err
	}
	n, _, err := lower.resolve(rel, false)
	if err != nil || n == nil || !n.isDir() {
		return err
	}
	if n.st.Mode&0o7777 == s.Mode&0o7777 && n.st.Uid == s.Uid && n.st.Gid == s.Gid {
		return os.Remove(p)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// builderLabels name this process as the owner of a RUN container.
func builderLabels() map[string]string {
	start, _ := procStart(os.Getpid())
	return map[string]string{
		labelBuild:        "run",
		labelBuilderPID:   strconv.Itoa(os.Getpid()),
		labelBuilderStart: strconv.FormatUint(start, 10),
	}
}

// procStart is the start time of process pid, in clock ticks after boot.
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold anything: fields count
	// from the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// removeStaleBuildContainers deletes the RUN containers of builders that
// died (killed before they could remove them). Errors are not the build's:
// the next build tries again.
func removeStaleBuildContainers(ctx context.Context, rt *runtime.Runtime) {
	list, err := rt.List()
	if err != nil {
		return
	}
	for _, c := range list {
		if c.Spec.Labels[labelBuild] == "" {
			continue
		}
		pid, _ := strconv.Atoi(c.Spec.Labels[labelBuilderPID])
		start, _ := strconv.ParseUint(c.Spec.Labels[labelBuilderStart], 10, 64)
		if pid > 0 {
			if s, err := procStart(pid); err == nil && s == start {
				continue // its builder runs: another build's
			}
		}
		rt.Delete(ctx, c.Spec.Name)
	}
}
