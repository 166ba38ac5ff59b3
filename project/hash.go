package project

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"
)

// ServiceHash is the value of the com.docker.compose.config-hash label, as
// docker compose computes it: the sha256 (hex) of the service's JSON with the
// attributes that do not call for a new container cleared (build, pull
// policy, scale and replicas, depends_on, profiles). The service must be
// as loaded by Load: env_file already merged into environment and dropped.
//
// The top-level keys are written in docker compose's frozen order
// (hashKeyOrder) rather than compose-go's field order, as docker compose
// does since compose-go split ServiceConfig into embedded specs: the same
// configuration keeps the same hash across compose-go versions, and a
// container created by one tool is kept, not recreated, by the other.
func ServiceHash(s types.ServiceConfig) (string, error) {
	s.Build = nil
	s.PullPolicy = ""
	s.Scale = nil
	if s.Deploy != nil {
		deploy := *s.Deploy // not the caller's
		deploy.Replicas = nil
		s.Deploy = &deploy
	}
	s.DependsOn = nil
	s.Profiles = nil
	raw, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	pinned, err := pinKeyOrder(raw, hashKeyOrder)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(pinned)
	return hex.EncodeToString(sum[:]), nil
}

// pinKeyOrder rewrites a JSON object with its top-level keys in the given
// order, values byte for byte; keys not in the list follow, sorted.
func pinKeyOrder(raw []byte, order []string) ([]byte, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	write := func(key string) {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(key) // a string always marshals
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(root[key])
		delete(root, key)
	}
	for _, key := range order {
		if _, ok := root[key]; ok {
			write(key)
		}
	}
	rest := make([]string, 0, len(root))
	for key := range root {
		rest = append(rest, key)
	}
	sort.Strings(rest)
	for _, key := range rest {
		write(key)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// hashKeyOrder is the field order of compose-go's ServiceConfig before it
// was split into embedded specs, which docker compose froze for its hashes.
// Do not reorder: every recorded hash depends on it. A key compose-go adds
// later goes after these (pinKeyOrder sorts the rest), as docker compose
// does.
var hashKeyOrder = []string{
	"profiles",
	"annotations",
	"attach",
	"build",
	"develop",
	"blkio_config",
	"cap_add",
	"cap_drop",
	"cgroup_parent",
	"cgroup",
	"cpu_count",
	"cpu_percent",
	"cpu_period",
	"cpu_quota",
	"cpu_rt_period",
	"cpu_rt_runtime",
	"cpus",
	"cpuset",
	"cpu_shares",
	"command",
	"configs",
	"container_name",
	"credential_spec",
	"depends_on",
	"deploy",
	"device_cgroup_rules",
	"devices",
	"dns",
	"dns_opt",
	"dns_search",
	"dockerfile",
	"domainname",
	"entrypoint",
	"provider",
	"environment",
	"env_file",
	"expose",
	"extends",
	"external_links",
	"extra_hosts",
	"group_add",
	"gpus",
	"hostname",
	"healthcheck",
	"image",
	"init",
	"ipc",
	"isolation",
	"labels",
	"label_file",
	"links",
	"logging",
	"log_driver",
	"log_opt",
	"mem_limit",
	"mem_reservation",
	"memswap_limit",
	"mem_swappiness",
	"mac_address",
	"models",
	"net",
	"network_mode",
	"networks",
	"oom_kill_disable",
	"oom_score_adj",
	"pid",
	"pids_limit",
	"platform",
	"ports",
	"privileged",
	"pull_policy",
	"read_only",
	"restart",
	"runtime",
	"scale",
	"secrets",
	"security_opt",
	"shm_size",
	"stdin_open",
	"stop_grace_period",
	"stop_signal",
	"storage_opt",
	"sysctls",
	"tmpfs",
	"tty",
	"ulimits",
	"use_api_socket",
	"user",
	"userns_mode",
	"uts",
	"volume_driver",
	"volumes",
	"volumes_from",
	"working_dir",
	"pre_start",
	"post_start",
	"pre_stop",
}
