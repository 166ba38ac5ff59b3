// Package seccomp builds and installs the seccomp filter of a container's
// process from docker's profiles, in pure Go: berth stays a static binary
// (no cgo, no libseccomp).
//
// When a container is created, berth calls Filter with its profile (nil
// for docker's default) and its capabilities, and keeps the Program's
// binary form (MarshalBinary) beside the container; the init, and every
// process that enters the container, reads it back and calls Install on
// the thread that execs. ParseProfile and LoadProfile check a profile in
// docker's JSON format. Compile is the compiler alone, for a runtime-spec
// profile.
//
// The filter means what the same profile means under docker, that is under
// runc, which builds the filter with libseccomp and patches it
// (libcontainer/seccomp/patchbpf): docker's own code (moby/profiles)
// resolves the profile's capability, architecture and kernel conditions,
// and the compiler follows libseccomp's and runc's rules (Compile). Where
// berth differs:
//
//   - A syscall of an ABI the filter has no section for kills the process
//     (SECCOMP_RET_KILL_PROCESS); libseccomp's default kills the thread.
//   - When several conditional rules of one syscall with different actions
//     hold for the same call, the first in the profile decides; libseccomp
//     orders its decision tree by argument rather than by rule. Docker's
//     default profile has no such overlap.
//   - On i386, libseccomp also turns a rule for a socket or IPC syscall
//     (socket, shmget…) into a rule for the multiplexer (socketcall, ipc)
//     with the call number as first argument. berth filters the direct
//     syscall only: a profile meant for i386 programs names socketcall and
//     ipc itself, as docker's default profile does.
//   - SCMP_ACT_NOTIFY is refused (ErrUnsupported): berth has no seccomp
//     agent.
//
// The syscall tables (ztables.go) are generated from golang.org/x/sys and
// the kernel's x32 header; see gen_tables.go.
package seccomp
