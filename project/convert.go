package project

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
)

// defaultPath is docker's PATH for a container whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultStopTimeout is docker's grace period between the stop signal and SIGKILL.
const defaultStopTimeout = 10 * time.Second

// specInput is everything ContainerSpec needs besides the service: plain
// values, so that the conversion stays a pure function that tests can call.
type specInput struct {
	Project    *types.Project
	Service    types.ServiceConfig
	Number     int
	Image      image.Image
	Layers     []string
	ConfigHash string
	// Volumes maps a named volume's key in the project ("data") to the host
	// directory that holds its data, and says whether it was just created.
	Volumes map[string]volumeMount
	// Anonymous gives the data directory of the container's anonymous
	// volume at index i of the service's volumes (`- /data`).
	Anonymous func(i int) (volumeMount, error)
	// ID is the container's identity; a random one is made when empty.
	ID string
	// EventLog is the project's event file (Engine.EventLogPath).
	EventLog string
}

type volumeMount struct {
	Path    string
	Created bool
}

// containerName is `<project>-<service>-<n>` unless container_name is set.
func containerName(project string, s types.ServiceConfig, number int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", project, s.Name, number)
}

// containerSpec turns a service and its image into a runtime.Spec, with
// docker's rules for merging the image config with the service.
func containerSpec(in specInput) (runtime.Spec, error) {
	s := in.Service
	cfg := in.Image.Config
	id := in.ID
	if id == "" {
		id = newID()
	}
	spec := runtime.Spec{
		Name:           containerName(in.Project.Name, s, in.Number),
		ID:             id,
		Hostname:       s.Hostname,
		Image:          s.Image,
		ImageID:        in.Image.ID,
		Layers:         in.Layers,
		Args:           commandLine(cfg.Entrypoint, cfg.Cmd, s.Entrypoint, s.Command),
		Cwd:            firstNonEmpty(s.WorkingDir, cfg.WorkingDir),
		User:           firstNonEmpty(s.User, cfg.User),
		ReadonlyRootfs: s.ReadOnly,
		StopSignal:     firstNonEmpty(s.StopSignal, cfg.StopSignal),
		StopTimeout:    defaultStopTimeout,
		EventLog:       in.EventLog,
	}
	if spec.Hostname == "" {
		spec.Hostname = id[:12]
	}
	if s.DomainName != "" {
		spec.Hostname += "." + s.DomainName
	}
	if s.StopGracePeriod != nil {
		spec.StopTimeout = time.Duration(*s.StopGracePeriod)
	}
	if len(spec.Args) == 0 {
		return runtime.Spec{}, fmt.Errorf("no command specified: the image %q has no CMD or ENTRYPOINT and the service sets no command", s.Image)
	}
	spec.Env = environment(cfg.Env, s.Environment, spec.Hostname)
	spec.Labels = containerLabels(in, cfg.Labels)
	for host, ips := range s.ExtraHosts {
		for _, ip := range ips {
			spec.Hosts = append(spec.Hosts, ip+"\t"+host)
		}
	}
	sort.Strings(spec.Hosts)
	var err error
	if spec.Restart, err = restartPolicy(s); err != nil {
		return runtime.Spec{}, err
	}
	if spec.Resources, err = resources(s); err != nil {
		return runtime.Spec{}, err
	}
	if spec.Healthcheck, err = serviceHealthcheck(s, cfg); err != nil {
		return runtime.Spec{}, err
	}
	if spec.Log, err = logConfig(s); err != nil {
		return runtime.Spec{}, err
	}
	// Up and Run checked the keys already (checkServices), the host's
	// security modules included; the runtime's Create checks the spec again.
	if spec.Security, _, err = serviceSecurity(in.Project, s, hostLSM{}); err != nil {
		return runtime.Spec{}, err
	}
	mounts, err := containerMounts(s, in.Volumes, in.Anonymous)
	if err != nil {
		return runtime.Spec{}, err
	}
	spec.Mounts = mounts
	return spec, nil
}

// commandLine applies docker's override rules: a service entrypoint replaces
// the image's and discards the image's CMD; a service command replaces CMD.
func commandLine(imgEntrypoint, imgCmd []string, entrypoint, command types.ShellCommand) []string {
	ep, cmd := imgEntrypoint, imgCmd
	if entrypoint != nil {
		ep, cmd = entrypoint, nil
	}
	if command != nil {
		cmd = command
	}
	return append(slices.Clone(ep), cmd...)
}

// environment is the image's Env overridden key by key by the service's
// environment (env_file content is already merged in by the loader). A
// variable with no value anywhere is dropped, as docker does. PATH and
// HOSTNAME are set as docker sets them.
func environment(imageEnv []string, env types.MappingWithEquals, hostname string) []string {
	var keys []string
	values := map[string]string{}
	set := func(k, v string) {
		if _, ok := values[k]; !ok {
			keys = append(keys, k)
		}
		values[k] = v
	}
	set("PATH", defaultPath)
	set("HOSTNAME", hostname)
	for _, kv := range imageEnv {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if v := env[k]; v != nil {
			set(k, *v)
		}
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+values[k])
	}
	return out
}

func containerLabels(in specInput, imageLabels map[string]string) map[string]string {
	labels := map[string]string{}
	for k, v := range imageLabels {
		labels[k] = v
	}
	for k, v := range in.Service.Labels {
		labels[k] = v
	}
	labels[LabelProject] = in.Project.Name
	labels[LabelService] = in.Service.Name
	labels[LabelNumber] = strconv.Itoa(in.Number)
	labels[LabelConfigHash] = in.ConfigHash
	labels[LabelOneoff] = "False"
	labels[LabelWorkingDir] = in.Project.WorkingDir
	labels[LabelConfigFiles] = strings.Join(in.Project.ComposeFiles, ",")
	labels[LabelImage] = in.Image.ID
	labels[LabelVersion] = Version
	return labels
}

// containerMounts turns the service's volumes and tmpfs into runtime mounts.
// Bind sources are absolute already (the loader resolves them from the
// project directory); a missing one is created unless the long syntax says
// create_host_path: false.
func containerMounts(s types.ServiceConfig, volumes map[string]volumeMount, anonymous func(int) (volumeMount, error)) ([]runtime.Mount, error) {
	var mounts []runtime.Mount
	for i, v := range s.Volumes {
		field := fmt.Sprintf("volumes[%d]", i)
		if !path.IsAbs(v.Target) {
			return nil, fmt.Errorf("%s: target %q must be an absolute path", field, v.Target)
		}
		m := runtime.Mount{Target: path.Clean(v.Target), ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeBind:
			m.Type = runtime.MountBind
			m.Source = v.Source
			if _, err := os.Stat(v.Source); errors.Is(err, os.ErrNotExist) {
				if v.Bind != nil && !bool(v.Bind.CreateHostPath) {
					return nil, fmt.Errorf("%s: bind source path %q does not exist (create_host_path is false)", field, v.Source)
				}
				if err := os.MkdirAll(v.Source, 0o755); err != nil {
					return nil, fmt.Errorf("%s: create bind source: %w", field, err)
				}
			} else if err != nil {
				return nil, fmt.Errorf("%s: bind source: %w", field, err)
			}
		case types.VolumeTypeVolume:
			vol, ok := volumes[v.Source]
			if v.Source == "" && anonymous != nil {
				var err error
				if vol, err = anonymous(i); err != nil {
					return nil, fmt.Errorf("%s: anonymous volume: %w", field, err)
				}
				ok = true
			}
			if !ok {
				return nil, fmt.Errorf("%s: volume %q is not declared in the top-level volumes", field, v.Source)
			}
			m.Type = runtime.MountBind
			m.Source = vol.Path
			m.CopyUp = vol.Created && (v.Volume == nil || !v.Volume.NoCopy)
			if v.Volume != nil && v.Volume.Subpath != "" {
				return nil, fmt.Errorf("%s: volume subpath is not supported yet", field)
			}
		case types.VolumeTypeTmpfs:
			m.Type = runtime.MountTmpfs
			if v.Tmpfs != nil {
				m.TmpfsSize = int64(v.Tmpfs.Size)
				m.TmpfsMode = v.Tmpfs.Mode
			}
		default:
			return nil, fmt.Errorf("%s: volume type %q is not supported", field, v.Type)
		}
		mounts = append(mounts, m)
	}
	for _, t := range s.Tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		m := runtime.Mount{Type: runtime.MountTmpfs, Target: path.Clean(target)}
		for _, o := range strings.Split(opts, ",") {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "size":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("tmpfs %q: size: %w", t, err)
				}
				m.TmpfsSize = n
			case "mode":
				n, err := strconv.ParseUint(v, 8, 32)
				if err != nil {
					return nil, fmt.Errorf("tmpfs %q: mode: %w", t, err)
				}
				m.TmpfsMode = uint32(n)
			}
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}
