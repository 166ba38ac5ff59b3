package network

import (
	"encoding/json"
	"fmt"
)

// ContainerNetwork is what one container's namespace is plugged into,
// carried in the container's spec from the engine to its monitor: one
// attachment per network, eth0 first (the one with the default route).
type ContainerNetwork struct {
	Attachments []Attachment `json:"attachments"`
}

// SetupContainerNetwork plugs the network namespace of process pid (a
// container's new namespace, before its process starts) into its networks.
// It is the monitor's network role (runtime.Roles.SetupNetwork). What it
// makes lives in that namespace and goes with it; the host end of each veth
// pair goes with its peer.
func SetupContainerNetwork(pid int, config json.RawMessage) error {
	var cfg ContainerNetwork
	if err := json.Unmarshal(config, &cfg); err != nil {
		return fmt.Errorf("network config: %w", err)
	}
	ns := fmt.Sprintf("/proc/%d/ns/net", pid)
	// lo first: the resolver binds 127.0.0.11 in it before the process
	// starts, which needs the loopback address up.
	if err := linkLoopbackUp(ns); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	for _, a := range cfg.Attachments {
		if err := Attach(ns, a); err != nil {
			return fmt.Errorf("attach to %s: %w", a.Bridge, err)
		}
	}
	return nil
}
