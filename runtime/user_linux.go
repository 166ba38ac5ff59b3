package runtime

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// resolveUser reads Spec.User ("uid", "uid:gid", "name", "name:group", or
// empty for root) against the image's /etc/passwd and /etc/group, with
// docker's rules (github.com/moby/sys/user is the code docker and runc use):
// a user given by name or by a uid listed in passwd gets its primary group,
// its supplementary groups from /etc/group and its home; an explicit group
// replaces the primary group and drops the supplementary ones; a numeric id
// that no file lists is used as it is, with HOME=/.
//
// It runs before pivot_root, after the volumes are mounted (a bind-mounted
// /etc/passwd counts), while the root may still be written: the working
// directory may have to be created even in a read-only root.
//
// groupAdd are more supplementary groups (group_add), by name in the image's
// /etc/group or by number.
func (r *rootfs) resolveUser(spec string, groupAdd []string) (*user.ExecUser, error) {
	passwd, err := r.openFile("/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("read /etc/passwd: %w", err)
	}
	group, err := r.openFile("/etc/group")
	if err != nil {
		return nil, fmt.Errorf("read /etc/group: %w", err)
	}
	// A nil *os.File in an io.Reader is not a nil reader: GetExecUser
	// tells "no file" (any numeric id is fine) from "not in the file".
	var pr, gr io.Reader
	if passwd != nil {
		defer passwd.Close()
		pr = passwd
	}
	if group != nil {
		defer group.Close()
		gr = group
	}
	// docker's message, as is: `unable to find user app: no matching
	// entries in passwd file`.
	u, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, pr, gr)
	if err != nil || len(groupAdd) == 0 {
		return u, err
	}
	if group != nil {
		if _, err := group.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("read /etc/group: %w", err)
		}
	}
	gids, err := user.GetAdditionalGroups(groupAdd, gr)
	if err != nil {
		return nil, fmt.Errorf("group_add: %w", err)
	}
	for _, g := range gids {
		if !slices.Contains(u.Sgids, g) {
			u.Sgids = append(u.Sgids, g)
		}
	}
	return u, nil
}

// makeCwd creates the working directory inside the root if it is missing,
// with the directories it adds owned by the container's user (so a service
// running as a user may write where it starts). Existing directories are
// not touched.
func (r *rootfs) makeCwd(cwd string, uid, gid int) error {
	if !filepath.IsAbs(cwd) {
		return fmt.Errorf("working directory %q is not an absolute path", cwd)
	}
	cwd = filepath.Clean(cwd)
	if cwd == "/" {
		return nil
	}
	parts := strings.Split(cwd[1:], "/")
	for i := range parts {
		p := "/" + strings.Join(parts[:i+1], "/")
		h, err := pathrs.OpenatInRoot(r.fd, p)
		if err == nil {
			h.Close()
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("working directory %s: %w", cwd, err)
		}
		// p is the first missing directory: create it and the rest.
		h, err = pathrs.MkdirAllHandle(r.fd, cwd, 0o755)
		if err != nil {
			return fmt.Errorf("create working directory %s: %w", cwd, err)
		}
		h.Close()
		for j := i; j < len(parts); j++ {
			q := "/" + strings.Join(parts[:j+1], "/")
			h, err := pathrs.OpenatInRoot(r.fd, q)
			if err != nil {
				return fmt.Errorf("create working directory %s: %w", cwd, err)
			}
			err = unix.Fchownat(int(h.Fd()), "", uid, gid, unix.AT_EMPTY_PATH)
			h.Close()
			if err != nil {
				return fmt.Errorf("create working directory %s: fchownat %s: %w", cwd, q, err)
			}
		}
		return nil
	}
	return nil
}

// switchUser makes the process the container's user. It runs on the init's
// locked thread, between dropping the bounding set and setting the
// capabilities (caps_linux.go). The syscall package's set*id calls change
// every thread of the process, as POSIX wants, not only this one.
func switchUser(u *user.ExecUser) error {
	// Keep the permitted set across setuid so that capset decides what the
	// process keeps, not the setuid side effect (runc's order).
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_KEEPCAPS: %w", err)
	}
	if err := syscall.Setgroups(u.Sgids); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(u.Gid); err != nil {
		return fmt.Errorf("setgid %d: %w", u.Gid, err)
	}
	if err := syscall.Setuid(u.Uid); err != nil {
		return fmt.Errorf("setuid %d: %w", u.Uid, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_KEEPCAPS: %w", err)
	}
	return nil
}
