package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/moby/sys/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// This file enforces the device rules of devices_linux.go: written to the
// devices controller's files on cgroup v1; on cgroup v2, which has no such
// controller, as an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE
// attached to the container's cgroup, as runc and crun do.
//
// Not cgroup1's nor cgroup2's own device support: cgroup2 (v3.1.3) attaches
// its program next to the ones already there, so a cgroup taken over keeps
// the old rules too, and its program lets a rule of access "r" allow an
// open for reading and writing.

// setDevices gives the cgroup the device rules, in place of any it had.
func (c *containerCgroup) setDevices(rules []specs.LinuxDeviceCgroup) error {
	if c.v2 != nil {
		return attachDeviceFilter(filepath.Join(c.host.root, c.host.group(c.name)), rules)
	}
	if !c.hasV1(cgroup1.Devices) {
		access, err := emulateDeviceRules(rules)
		if err != nil {
			return err
		}
		// In a user namespace the kernel refuses writes to the devices
		// controller (mountedV1 leaves it out) and refuses mknod of a
		// device outright: the host's own confinement of the namespace
		// is what holds there.
		if access.allowsAll() || userns.RunningInUserNS() {
			return nil
		}
		return fmt.Errorf("devices: the devices cgroup controller is not mounted at %s: berth does not run a container that could open every device of the host; mount it, or make the service privileged",
			filepath.Join(c.host.root, string(cgroup1.Devices)))
	}
	dir := filepath.Join(c.host.root, string(cgroup1.Devices), c.host.group(c.name))
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := writeCgroupFile(dir, file, deviceRuleString(r)); err != nil {
			return fmt.Errorf("devices: write %q to %s: %w", deviceRuleString(r), file, err)
		}
	}
	return nil
}

// deviceRuleString is the rule in the syntax of devices.allow: "c 1:3 rwm".
func deviceRuleString(r specs.LinuxDeviceCgroup) string {
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	num := func(n *int64) string {
		if n == nil || *n < 0 {
			return "*"
		}
		return strconv.FormatInt(*n, 10)
	}
	return typ + " " + num(r.Major) + ":" + num(r.Minor) + " " + r.Access
}

// deviceAccess is what a list of rules comes to, as the v1 controller keeps
// it: a default, and the exceptions to it.
type deviceAccess struct {
	allow      bool
	exceptions []deviceException
}

// deviceException is one device, or a range of them, that the default
// does not hold for.
type deviceException struct {
	block        bool
	major, minor int64  // -1: any
	access       uint32 // unix.BPF_DEVCG_ACC_* bits
}

func (a deviceAccess) allowsAll() bool { return a.allow && len(a.exceptions) == 0 }

// accessBits turns "rwm" into unix.BPF_DEVCG_ACC_* bits.
func accessBits(access string) (uint32, error) {
	var bits uint32
	for _, c := range access {
		switch c {
		case 'r':
			bits |= unix.BPF_DEVCG_ACC_READ
		case 'w':
			bits |= unix.BPF_DEVCG_ACC_WRITE
		case 'm':
			bits |= unix.BPF_DEVCG_ACC_MKNOD
		default:
			return 0, fmt.Errorf("device access %q: %q is not r, w or m", access, c)
		}
	}
	return bits, nil
}

// emulateDeviceRules applies the rules, in order, as the kernel's v1
// devices controller does (security/device_cgroup.c,
// devcgroup_update_access): a type "a" rule sets the default and clears
// the exceptions; a rule against the default adds an exception, or widens
// the one of the very same device; a rule with the default narrows the
// exception of the very same device, or does nothing. A new cgroup allows
// everything.
func emulateDeviceRules(rules []specs.LinuxDeviceCgroup) (deviceAccess, error) {
	a := deviceAccess{allow: true}
	for _, r := range rules {
		bits, err := accessBits(r.Access)
		if err != nil {
			return deviceAccess{}, err
		}
		e := deviceException{major: -1, minor: -1, access: bits}
		switch r.Type {
		case "", "a":
			a = deviceAccess{allow: r.Allow}
			continue
		case "b":
			e.block = true
		case "c":
		default:
			return deviceAccess{}, fmt.Errorf("device rule %q: unknown type %q", deviceRuleString(r), r.Type)
		}
		if r.Major != nil {
			e.major = *r.Major
		}
		if r.Minor != nil {
			e.minor = *r.Minor
		}
		i := 0
		for i < len(a.exceptions) && !a.exceptions[i].sameDevices(e) {
			i++
		}
		switch {
		case r.Allow != a.allow && i == len(a.exceptions):
			a.exceptions = append(a.exceptions, e)
		case r.Allow != a.allow:
			a.exceptions[i].access |= e.access
		case i < len(a.exceptions):
			a.exceptions[i].access &^= e.access
			if a.exceptions[i].access == 0 {
				a.exceptions = append(a.exceptions[:i], a.exceptions[i+1:]...)
			}
		}
	}
	return a, nil
}

func (e deviceException) sameDevices(o deviceException) bool {
	return e.block == o.block && e.major == o.major && e.minor == o.minor
}

// program is the eBPF device filter that decides as the v1 controller
// decides with a (devcgroup_legacy_check_permission): with a default of
// deny, an exception allows an access only if it names every bit of it
// (an "r" rule does not allow an open for reading and writing); with a
// default of allow, an exception denies any access it names a bit of.
func (a deviceAccess) program() asm.Instructions {
	def, exc := int32(0), int32(1)
	if a.allow {
		def, exc = 1, 0
	}
	label := func(i int) string { return "exception-" + strconv.Itoa(i) }
	// The context is struct bpf_cgroup_dev_ctx { u32 access_type; u32
	// major; u32 minor; }, the device type in the low 16 bits of
	// access_type and the access in the high 16.
	insts := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	for i, e := range a.exceptions {
		next := label(i + 1)
		typ := int32(unix.BPF_DEVCG_DEV_CHAR)
		if e.block {
			typ = unix.BPF_DEVCG_DEV_BLOCK
		}
		block := asm.Instructions{asm.JNE.Imm(asm.R2, typ, next)}
		if e.major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(e.major), next))
		}
		if e.minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(e.minor), next))
		}
		block = append(block, asm.Mov.Reg32(asm.R1, asm.R3), asm.And.Imm32(asm.R1, int32(e.access)))
		if a.allow {
			block = append(block, asm.JEq.Imm(asm.R1, 0, next))
		} else {
			block = append(block, asm.JNE.Reg(asm.R1, asm.R3, next))
		}
		block = append(block, asm.Mov.Imm32(asm.R0, exc), asm.Return())
		block[0] = block[0].WithSymbol(label(i))
		insts = append(insts, block...)
	}
	return append(insts, asm.Mov.Imm32(asm.R0, def).WithSymbol(label(len(a.exceptions))), asm.Return())
}

// attachDeviceFilter attaches the program of the rules to the cgroup v2
// directory dir, in place of the device programs attached there before
// (by an earlier run whose cgroup this one takes over).
func attachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	access, err := emulateDeviceRules(rules)
	if err != nil {
		return err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "berth_devices",
		Type:         ebpf.CGroupDevice,
		Instructions: access.program(),
		License:      "Apache",
	})
	if err != nil {
		if userns.RunningInUserNS() && errors.Is(err, unix.EPERM) {
			return nil // as on v1: see setDevices
		}
		return fmt.Errorf("devices: load the eBPF device filter: %w", err)
	}
	defer prog.Close()
	f, err := os.OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	defer f.Close()
	fd := int(f.Fd())
	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("devices: list the device filters of %s: %w", dir, err)
	}
	// The new one first: while both are attached an access must pass
	// both, so at no moment is the cgroup looser than either. Not
	// BPF_F_REPLACE: cilium/ebpf v0.16 passes the program to replace
	// without the flag, and the kernel then attaches one more.
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("devices: attach the eBPF device filter to %s: %w", dir, err)
	}
	for _, p := range old.Programs {
		if err := detachDeviceFilter(fd, p.ID); err != nil {
			return fmt.Errorf("devices: detach an old device filter from %s: %w", dir, err)
		}
	}
	return nil
}

// detachDeviceFilter detaches program id from the cgroup fd. One already
// gone is success. One the kernel will not show (an LSM's) stays: another
// device program can only deny more, as runc reasons.
func detachDeviceFilter(fd int, id ebpf.ProgramID) error {
	p, err := ebpf.NewProgramFromID(id)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return nil
	} else if err != nil {
		return err
	}
	defer p.Close()
	err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
