// secprobe tries, inside a container, what docker's isolation forbids, and
// prints one line per probe: "NAME: ok" or "NAME: ERRNO-NAME". Static, so
// that it runs in any image: `secprobe unshare keyctl mount …`.
package main

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

var probes = map[string]func() error{
	// docker's profile allows unshare only with CAP_SYS_ADMIN; flags 0,
	// which the kernel accepts from anyone, tell the filter from the
	// capability check (a Go program cannot unshare a user namespace:
	// it has threads).
	"unshare": func() error { return unix.Unshare(0) },
	// The kernel keyring is not namespaced.
	"keyctl": func() error {
		_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_USER_KEYRING, false)
		return err
	},
	"mount": func() error { return unix.Mount("tmpfs", "/mnt", "tmpfs", 0, "") },
	"bpf": func() error {
		_, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, 0, 0)
		return errnoErr(e)
	},
	"kexec_load": func() error {
		_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0)
		return errnoErr(e)
	},
	"open_by_handle_at": func() error {
		h := make([]byte, 16)
		_, _, e := unix.Syscall(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&h[0])), 0)
		return errnoErr(e)
	},
	"userfaultfd": func() error {
		fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
		if e == 0 {
			unix.Close(int(fd))
		}
		return errnoErr(e)
	},
	"mkdir": func() error {
		err := unix.Mkdir("/tmp/secprobe-dir", 0o755)
		unix.Rmdir("/tmp/secprobe-dir")
		return err
	},
	"getpid": func() error { unix.Getpid(); return nil },
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func main() {
	for _, name := range os.Args[1:] {
		probe, ok := probes[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "secprobe: unknown probe %q\n", name)
			os.Exit(2)
		}
		err := probe()
		var errno unix.Errno
		switch {
		case err == nil:
			fmt.Printf("%s: ok\n", name)
		case errors.As(err, &errno):
			fmt.Printf("%s: %s\n", name, unix.ErrnoName(errno))
		default:
			fmt.Printf("%s: %v\n", name, err)
		}
	}
}

// atFDCWD is AT_FDCWD as a syscall argument.
var atFDCWD = unix.AT_FDCWD
