package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// applyChanges applies `docker import --change` instructions to cfg. Like
// docker's, values are taken literally: no $VARIABLE is expanded.
func applyChanges(cfg *v1.Config, changes []string) error {
	for _, c := range changes {
		if err := applyChange(cfg, c); err != nil {
			return fmt.Errorf("change %q: %w", c, err)
		}
	}
	return nil
}

var changeInstructions = "CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"

func applyChange(cfg *v1.Config, change string) error {
	change = strings.TrimSpace(change)
	instr, rest := change, ""
	if i := strings.IndexAny(change, " \t"); i >= 0 {
		instr, rest = change[:i], strings.TrimSpace(change[i:])
	}
	instr = strings.ToUpper(instr)
	if instr == "" {
		return errors.New("empty instruction")
	}
	if rest == "" {
		return fmt.Errorf("%s needs an argument", instr)
	}
	switch instr {
	case "CMD":
		cfg.Cmd = parseCommand(rest)
	case "ENTRYPOINT":
		cfg.Entrypoint = parseCommand(rest)
	case "ENV":
		pairs, err := keyValues(rest)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(rest)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "WORKDIR":
		dir := unquote(rest)
		if !path.IsAbs(dir) {
			dir = path.Join("/", cfg.WorkingDir, dir)
		}
		cfg.WorkingDir = path.Clean(dir)
	case "USER":
		cfg.User = unquote(rest)
	case "STOPSIGNAL":
		cfg.StopSignal = unquote(rest)
	case "EXPOSE":
		words, err := splitWords(rest)
		if err != nil {
			return err
		}
		for _, w := range words {
			ports, err := ExposedPorts(w)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
	case "VOLUME":
		vols, err := jsonOrWords(rest)
		if err != nil {
			return err
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			cfg.Volumes[v] = struct{}{}
		}
	case "HEALTHCHECK":
		hc, err := parseHealthcheck(rest)
		if err != nil {
			return err
		}
		cfg.Healthcheck = hc
	default:
		return fmt.Errorf("unknown instruction %s (--change supports %s)", instr, changeInstructions)
	}
	return nil
}

// parseCommand reads the exec form (a JSON array) or the shell form, run by
// /bin/sh -c. As docker, text that is not a valid JSON array is shell form.
func parseCommand(s string) []string {
	if strings.HasPrefix(s, "[") {
		var args []string
		if err := json.Unmarshal([]byte(s), &args); err == nil {
			return args
		}
	}
	return []string{"/bin/sh", "-c", s}
}

func jsonOrWords(s string) ([]string, error) {
	if strings.HasPrefix(s, "[") {
		var args []string
		if err := json.Unmarshal([]byte(s), &args); err == nil {
			return args, nil
		}
	}
	return splitWords(s)
}

// keyValues reads "k=v k2='v 2'", or the legacy "k v with spaces".
func keyValues(s string) ([][2]string, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		key, value, _ := strings.Cut(s, " ")
		return [][2]string{{key, unquote(strings.TrimSpace(value))}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// splitWords splits s at blanks, as a shell without expansion: "double" and
// 'single' quotes group, a backslash escapes the next character (in double
// quotes only before " and \).
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '\'' || c == '"':
			end := i + 1
			for ; end < len(s) && s[end] != c; end++ {
				if c == '"' && s[end] == '\\' && end+1 < len(s) && (s[end+1] == '"' || s[end+1] == '\\') {
					end++
				}
				w.WriteByte(s[end])
			}
			if end == len(s) {
				return nil, fmt.Errorf("unterminated quote %c", c)
			}
			i = end
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func unquote(s string) string {
	if words, err := splitWords(s); err == nil && len(words) == 1 {
		return words[0]
	}
	return s
}

// ExposedPorts reads an EXPOSE word, "80", "53/udp" or "8000-8002/tcp",
// as the image config's keys: "80/tcp", "53/udp", "8000/tcp"….
func ExposedPorts(s string) ([]string, error) {
	ports, proto, _ := strings.Cut(s, "/")
	proto = strings.ToLower(proto)
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("port %q: unknown protocol %q", s, proto)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	first, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || first == 0 {
		return nil, fmt.Errorf("port %q: not a port number", s)
	}
	last := first
	if isRange {
		if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
			return nil, fmt.Errorf("port %q: not a port range", s)
		}
	}
	var out []string
	for p := first; p <= last; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// parseHealthcheck reads "NONE" or "[--interval=D] [--timeout=D]
// [--start-period=D] [--retries=N] CMD command".
func parseHealthcheck(s string) (*v1.HealthConfig, error) {
	if strings.EqualFold(strings.TrimSpace(s), "NONE") {
		return &v1.HealthConfig{Test: []string{"NONE"}}, nil
	}
	hc := &v1.HealthConfig{}
	for strings.HasPrefix(s, "--") {
		flag, rest, _ := strings.Cut(s, " ")
		s = strings.TrimSpace(rest)
		name, value, ok := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if !ok {
			return nil, fmt.Errorf("HEALTHCHECK flag %q needs =VALUE", flag)
		}
		var err error
		switch name {
		case "interval":
			hc.Interval, err = time.ParseDuration(value)
		case "timeout":
			hc.Timeout, err = time.ParseDuration(value)
		case "start-period":
			hc.StartPeriod, err = time.ParseDuration(value)
		case "retries":
			hc.Retries, err = strconv.Atoi(value)
		case "start-interval":
			// Not in the OCI config; accepted and ignored.
		default:
			return nil, fmt.Errorf("unknown HEALTHCHECK flag --%s", name)
		}
		if err != nil {
			return nil, fmt.Errorf("HEALTHCHECK --%s: %w", name, err)
		}
	}
	word, cmd, _ := strings.Cut(s, " ")
	if !strings.EqualFold(word, "CMD") || strings.TrimSpace(cmd) == "" {
		return nil, errors.New("HEALTHCHECK needs NONE or CMD command")
	}
	cmd = strings.TrimSpace(cmd)
	if args := parseCommand(cmd); len(args) == 3 && args[0] == "/bin/sh" && args[2] == cmd {
		hc.Test = []string{"CMD-SHELL", cmd}
	} else {
		hc.Test = append([]string{"CMD"}, args...)
	}
	return hc, nil
}
