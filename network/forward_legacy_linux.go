package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// The legacy side of the host's FORWARD chain (see forward_linux.go):
// x_tables' filter table, through the iptables binary, as netavark does.

// forwardLegacyLoaded reports whether x_tables' filter table exists in the
// calling thread's namespace (thread-self: /proc/self/net would be the
// main thread's namespace).
func forwardLegacyLoaded() (bool, error) {
	b, err := os.ReadFile("/proc/thread-self/net/ip_tables_names")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no ip_tables in this kernel
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(strings.Fields(string(b)), "filter"), nil
}

// forwardLegacyBinary finds the legacy iptables: iptables-legacy, or an
// iptables that is the legacy one.
func forwardLegacyBinary() (string, error) {
	if p, err := exec.LookPath("iptables-legacy"); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("iptables"); err == nil {
		out, err := exec.Command(p, "-V").Output()
		if err == nil && bytes.Contains(out, []byte("legacy")) {
			return p, nil
		}
	}
	return "", ErrForwardUnmanaged
}

// forwardLegacyRun runs the legacy iptables on the filter table, waiting
// for the xtables lock as other users of iptables do.
func forwardLegacyRun(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, append([]string{"-w", "-t", "filter"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// forwardLegacyList returns `iptables-legacy -S FORWARD`, one line each;
// nothing when no legacy filter table is loaded.
func forwardLegacyList() ([]string, error) {
	loaded, err := forwardLegacyLoaded()
	if err != nil || !loaded {
		return nil, err
	}
	bin, err := forwardLegacyBinary()
	if err != nil {
		return nil, err
	}
	out, err := forwardLegacyRun(bin, "-S", "FORWARD")
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, nil
}

// iptablesComment is the --comment of a line of `iptables -S`, unquoted.
func iptablesComment(line string) string {
	_, rest, ok := strings.Cut(line, "--comment ")
	if !ok {
		return ""
	}
	if q, ok := strings.CutPrefix(rest, `"`); ok {
		s, _, _ := strings.Cut(q, `"`)
		return s
	}
	s, _, _ := strings.Cut(rest, " ")
	return s
}

// iptablesDrops reports whether the lines of `iptables -S FORWARD` drop
// what no rule accepts.
func iptablesDrops(lines []string) bool {
	var last string
	for _, l := range lines {
		if l == "-P FORWARD DROP" {
			return true
		}
		if strings.HasPrefix(l, "-A FORWARD ") {
			last = l
		}
	}
	return strings.HasSuffix(last, " -j DROP") || strings.Contains(last, " -j REJECT")
}

// forwardLegacyEnsure: see EnsureForward.
func forwardLegacyEnsure(bridge string) error {
	lines, err := forwardLegacyList()
	if err != nil || lines == nil {
		if errors.Is(err, ErrForwardUnmanaged) {
			return fmt.Errorf("cannot check whether it drops forwarded traffic: %w: install iptables", err)
		}
		return err
	}
	have := map[string]bool{}
	for _, l := range lines {
		if c := iptablesComment(l); forwardBridge(c) == bridge {
			have[c] = true
		}
	}
	if len(have) == len(forwardRules) {
		return nil
	}
	if len(have) == 0 && !iptablesDrops(lines) {
		return nil
	}
	bin, err := forwardLegacyBinary()
	if err != nil {
		return err
	}
	if err := forwardLegacyRemove(bridge); err != nil {
		return err
	}
	for i := len(forwardRules) - 1; i >= 0; i-- {
		if _, err := forwardLegacyRun(bin, append([]string{"-I", "FORWARD", "1"}, forwardRules[i].iptablesArgs(bridge)...)...); err != nil {
			return err
		}
	}
	return nil
}

// forwardLegacyRemove: see RemoveForward. Each rule is deleted by its
// spec, as often as it is there (two berths may have added it at once).
func forwardLegacyRemove(bridge string) error {
	lines, err := forwardLegacyList()
	if err != nil || lines == nil {
		return err
	}
	bin, err := forwardLegacyBinary()
	if err != nil {
		return err
	}
	for _, l := range lines {
		if forwardBridge(iptablesComment(l)) != bridge {
			continue
		}
		for _, k := range forwardRules {
			if iptablesComment(l) != k.comment(bridge) {
				continue
			}
			args := append([]string{"-D", "FORWARD"}, k.iptablesArgs(bridge)...)
			if _, err := forwardLegacyRun(bin, args...); err != nil {
				// Gone meanwhile (another berth removed it) is success.
				if _, cerr := forwardLegacyRun(bin, append([]string{"-C", "FORWARD"}, k.iptablesArgs(bridge)...)...); cerr != nil {
					continue
				}
				return err
			}
		}
	}
	return nil
}
