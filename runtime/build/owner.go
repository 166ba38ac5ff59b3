package build

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/moby/sys/user"
)

// owner is the numeric owner --chown gives copied files.
type owner struct{ uid, gid int }

// resolveOwner reads --chown: "user", "user:group", numeric or by name from
// the image's /etc/passwd and /etc/group. As docker, a user without a
// group gives the same number to both.
func resolveOwner(image *fsView, spec string) (*owner, error) {
	if spec == "" {
		return nil, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, err := lookupID(image, u, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	gid := uid
	if hasGroup {
		if gid, err = lookupID(image, g, "/etc/group"); err != nil {
			return nil, err
		}
	}
	return &owner{uid: uid, gid: gid}, nil
}

// lookupID finds a user (in /etc/passwd) or group (in /etc/group) of the
// image by name, unless name is a number already.
func lookupID(image *fsView, name, file string) (int, error) {
	if name == "" {
		return 0, fmt.Errorf("empty name")
	}
	if id, err := strconv.Atoi(name); err == nil {
		if id < 0 {
			return 0, fmt.Errorf("invalid ID %d", id)
		}
		return id, nil
	}
	data, err := image.readFile(file)
	if err != nil {
		return 0, fmt.Errorf("read %s of the image: %w", file, err)
	}
	what := "user"
	if file == "/etc/group" {
		what = "group"
		groups, err := user.ParseGroupFilter(bytes.NewReader(data), func(g user.Group) bool { return g.Name == name })
		if err == nil && len(groups) > 0 {
			return groups[0].Gid, nil
		}
	} else {
		users, err := user.ParsePasswdFilter(bytes.NewReader(data), func(u user.User) bool { return u.Name == name })
		if err == nil && len(users) > 0 {
			return users[0].Uid, nil
		}
	}
	return 0, fmt.Errorf("no %s %q in the image's %s", what, name, file)
}

// execOwner is the owner of what a step makes as USER spec ("name",
// "uid", "name:group"…): as the process of that user would be, a name
// taking its primary group from the image's /etc/passwd.
func execOwner(image *fsView, spec string) (owner, error) {
	if spec == "" {
		return owner{}, nil
	}
	passwd, err := image.readFile("/etc/passwd")
	if err != nil {
		return owner{}, fmt.Errorf("read /etc/passwd of the image: %w", err)
	}
	group, err := image.readFile("/etc/group")
	if err != nil {
		return owner{}, fmt.Errorf("read /etc/group of the image: %w", err)
	}
	var pr, gr io.Reader
	if passwd != nil {
		pr = bytes.NewReader(passwd)
	}
	if group != nil {
		gr = bytes.NewReader(group)
	}
	u, err := user.GetExecUser(spec, nil, pr, gr)
	if err != nil {
		return owner{}, fmt.Errorf("USER %s: %w", spec, err)
	}
	return owner{uid: u.Uid, gid: u.Gid}, nil
}
