package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Volumes is the store of named volumes, one directory each under one
// folder (BERTH_ROOT/volumes), as docker's local driver lays them out:
//
//	NAME/_data       what containers mount
//	NAME/meta.json   name, labels, creation time
//
// A volume is written under a temporary name and renamed into place, so a
// berth killed half-way leaves no half volume under a real name.
type Volumes struct {
	dir string
}

// Volume is one named volume.
type Volume struct {
	Name string `json:"name"`
	// Path is the directory to mount (NAME/_data).
	Path      string            `json:"-"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

const (
	volumeData = "_data"
	volumeMeta = "meta.json"
)

// notFoundError names what is missing; it is ErrNotFound for errors.Is.
type notFoundError struct{ what, name string }

func (e notFoundError) Error() string        { return fmt.Sprintf("no such %s: %s", e.what, e.name) }
func (e notFoundError) Is(target error) bool { return target == ErrNotFound }

// NewVolumes returns the volume store in dir, creating it if needed.
func NewVolumes(dir string) (*Volumes, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	return &Volumes{dir: dir}, nil
}

// Ensure returns the volume name, creating it (empty, with labels) if it
// does not exist yet; created says which. The labels of an existing volume
// are left as they are.
func (v *Volumes) Ensure(name string, labels map[string]string) (vol Volume, created bool, err error) {
	if err := validName(name); err != nil {
		return Volume{}, false, fmt.Errorf("volume: %w", err)
	}
	if vol, err := v.Get(name); err == nil || !errors.Is(err, ErrNotFound) {
		return vol, false, err
	}
	tmpName, err := tempName(creatingPrefix, name)
	if err != nil {
		return Volume{}, false, fmt.Errorf("create volume %q: %w", name, err)
	}
	tmp := filepath.Join(v.dir, tmpName)
	if err := os.Mkdir(tmp, 0o711); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %q: %w", name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// A mode of its own: Mkdir's is cut by the umask.
	if err := os.Mkdir(filepath.Join(tmp, volumeData), 0o755); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %q: %w", name, err)
	}
	if err := os.Chmod(filepath.Join(tmp, volumeData), 0o755); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %q: %w", name, err)
	}
	vol = Volume{Name: name, Labels: labels, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := writeJSONAtomic(filepath.Join(tmp, volumeMeta), vol); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %q: %w", name, err)
	}
	final := filepath.Join(v.dir, name)
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			// Another berth created it meanwhile: it is ours too.
			os.RemoveAll(tmp)
			vol, err := v.Get(name)
			return vol, false, err
		}
		return Volume{}, false, fmt.Errorf("create volume %q: %w", name, err)
	}
	vol.Path = filepath.Join(final, volumeData)
	return vol, true, nil
}

// Get returns the volume name; an error that is ErrNotFound if there is
// none.
func (v *Volumes) Get(name string) (Volume, error) {
	if validName(name) != nil {
		return Volume{}, notFoundError{"volume", name}
	}
	dir := filepath.Join(v.dir, name)
	var vol Volume
	if err := readJSON(filepath.Join(dir, volumeMeta), &vol); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Volume{}, notFoundError{"volume", name}
		}
		return Volume{}, fmt.Errorf("volume %q: %w", name, err)
	}
	vol.Name = name
	vol.Path = filepath.Join(dir, volumeData)
	return vol, nil
}

// List returns every volume, sorted by name, and removes what a killed
// berth left half-written.
func (v *Volumes) List() ([]Volume, error) {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	var out []Volume
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			if staleTemp(e.Name()) {
				os.RemoveAll(filepath.Join(v.dir, e.Name()))
			}
			continue
		}
		if !e.IsDir() {
			continue
		}
		vol, err := v.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, vol)
	}
	return out, nil
}

// Remove deletes the volume and its data. A volume that does not exist is
// success. Whether a container still uses it is the caller's question.
func (v *Volumes) Remove(name string) error {
	if validName(name) != nil {
		return nil
	}
	tmpName, err := tempName(removingPrefix, name)
	if err != nil {
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	tmp := filepath.Join(v.dir, tmpName)
	if err := os.Rename(filepath.Join(v.dir, name), tmp); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	return nil
}
