package project

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime"
)

// Teardown (down) must finish whatever state survived: a disk too full to
// write on, an `up` killed half-way that left a lease for a container it
// never created, records lost while a bridge stayed. So it goes on past
// every failure to the end, and it writes nothing it does not need:
// containers are discarded without recording their exit, the leases of
// networks that go are not given back one by one first (they go with the
// network), and only the leases on networks that stay are written.
//
// What it could not do comes in two kinds. An object left on the host or
// in the state (a container, a bridge, a table, a rule, a volume) fails
// the down: the user must act, and the error says what is left. A record
// it could not write (an event in the project's log, a lease given back on
// another project's network) does not: everything is down, and a warning
// says what the records miss; a later down writes what it still can.

// teardown collects what a down could not do, from several goroutines.
type teardown struct {
	mu     sync.Mutex
	failed []error
	// unrecorded are the records that could not be written, as the
	// warnings say them.
	unrecorded []string
	noSpace    bool
}

func (td *teardown) fail(err error) {
	if err == nil {
		return
	}
	td.mu.Lock()
	td.failed = append(td.failed, err)
	td.mu.Unlock()
}

// unrecord notes that what happened (`container web-1 was removed`) could
// not be written down.
func (td *teardown) unrecord(what string, err error) {
	td.mu.Lock()
	defer td.mu.Unlock()
	td.unrecorded = append(td.unrecorded, fmt.Sprintf("could not record that %s: %v", what, err))
	td.noSpace = td.noSpace || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// reportTeardown warns of what could not be recorded, and returns the
// objects left, if any, as the down's error.
func (e *Engine) reportTeardown(td *teardown) error {
	for _, w := range td.unrecorded {
		e.warn(w)
	}
	if len(td.unrecorded) > 0 && len(td.failed) == 0 {
		why, next := "its state could not be written", "run down again"
		if td.noSpace {
			why, next = fmt.Sprintf("the disk holding %s is full", e.root), "free some space and run down again"
		}
		e.warn(fmt.Sprintf("the project is down, but %s: what is listed above is not recorded; %s to record what it still can", why, next))
	}
	return errors.Join(td.failed...)
}

// takeDown stops a container as stop does (its stop signal, then SIGKILL
// after the timeout), removes it for good and unplugs its veth pairs. Its
// addresses are given back later, by network (releaseLeft).
func (e *Engine) takeDown(ctx context.Context, c *runtime.Container, timeout *time.Duration, td *teardown) {
	name := c.Spec.Name
	// The removal kills whatever the stop could not: a failed stop
	// matters only if the removal fails too.
	stopErr := e.stopContainer(ctx, c, timeout)
	e.emit(Removing, containerObject(name), "")
	if err := e.runtime.Delete(ctx, name); err != nil {
		e.emit(ErrorEvent, containerObject(name), err.Error())
		td.fail(errors.Join(stopErr, fmt.Errorf("remove container %s: %w", name, err)))
		return
	}
	if c.Spec.EventLog != "" {
		err := runtime.AppendEvent(c.Spec.EventLog, runtime.Event{Action: eventDestroy, Container: name, ID: c.Spec.ID})
		if err != nil {
			td.unrecord(fmt.Sprintf("container %s was removed, in the project's event log", name), err)
		}
	}
	// The pairs go with the container's namespace, but the kernel tears
	// a namespace down in the background: take them now, so that a down
	// leaves nothing behind the moment it returns.
	if err := e.detachContainer(c); err != nil {
		td.fail(fmt.Errorf("remove container %s: %w", name, err))
		return
	}
	e.emit(Removed, containerObject(name), "")
}

// takeDownAll takes the containers down one after the other.
func (e *Engine) takeDownAll(ctx context.Context, cs []*runtime.Container, timeout *time.Duration, td *teardown) {
	for _, c := range cs {
		e.takeDown(ctx, c, timeout, td)
	}
}

// leaseHeld tells, for the networks of project, whether a lease still
// holds its network: its container exists, or might in a moment, being
// made by an `up` of another project that holds its lock now. A lease of a
// container that does not exist is otherwise what an `up` killed between
// the lease and the create leaves: nothing holds it.
func (e *Engine) leaseHeld(project string) func(network.Lease) bool {
	return func(l network.Lease) bool {
		if _, err := e.runtime.Get(l.Container); !errors.Is(err, runtime.ErrNotFound) {
			return true // there, or unreadable: not ours to judge
		}
		return l.Project != "" && l.Project != project && e.projectBusy(l.Project)
	}
}

// projectBusy reports whether another process holds the project's lock
// (lockProject) now. It never waits, and never creates the lock file: a
// project never locked runs nothing.
func (e *Engine) projectBusy(name string) bool {
	if name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return true // not a project name: assume the worst
	}
	f, err := os.OpenFile(filepath.Join(e.root, "locks", name), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	defer f.Close() // and with it the lock, if taken
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	return err != nil
}

// releaseLeft gives back the addresses that the project's containers, gone
// now, still hold on networks that stay (another project's, or one still
// in use). It writes only there, and a write that fails is a record
// missed, not a failure: the container is gone all the same.
func (e *Engine) releaseLeft(project string, td *teardown) {
	nets, err := e.networks.Networks()
	if err != nil {
		td.fail(fmt.Errorf("give back addresses: %w", err))
		return
	}
	for _, n := range nets {
		leases, err := e.networks.Leases(n.Name)
		if err != nil {
			continue // removed meanwhile
		}
		for _, l := range leases {
			if l.Project != project {
				continue
			}
			if _, err := e.runtime.Get(l.Container); !errors.Is(err, runtime.ErrNotFound) {
				continue
			}
			if err := e.networks.Release(n.Name, l.Container); err != nil {
				td.unrecord(fmt.Sprintf("container %s left network %s (its address %s stays taken)", l.Container, n.Name, l.Addr), err)
			}
		}
	}
}

// removeLostBridges removes the bridges (and their FORWARD rules) of the
// project's networks that have no record: what a record lost, or removed
// while its bridge could not be, leaves. Bridge names come from the state
// root and the network's name, so no other project's bridge has one.
func (e *Engine) removeLostBridges(p *types.Project, td *teardown) {
	nets, _, err := planNetworks(p)
	if err != nil {
		return // the file says nothing usable; up would have failed too
	}
	for _, key := range sortedKeys(nets) {
		n := nets[key]
		if n.External {
			continue
		}
		if _, err := e.networks.Network(n.Name); !errors.Is(err, network.ErrNetworkNotFound) {
			continue // recorded (removeNetworks decides), or unreadable
		}
		bridge := e.bridgeName(n.Name)
		exists, err := network.BridgeExists(bridge)
		if err != nil {
			td.fail(err)
			continue
		}
		if !exists {
			// Rules without their bridge: nothing to show for them.
			td.fail(network.RemoveForward(bridge))
			continue
		}
		obj := fmt.Sprintf("Network %s", n.Name)
		e.emit(Removing, obj, "")
		if err := e.removeBridge(bridge); err != nil {
			td.fail(fmt.Errorf("network %s: %w", n.Name, err))
			continue
		}
		e.emit(Removed, obj, "")
	}
}

// removeBridge deletes a network's bridge and its rules in the host's
// FORWARD chain.
func (e *Engine) removeBridge(bridge string) error {
	return errors.Join(network.DeleteBridge(bridge), network.RemoveForward(bridge))
}
