package project

import (
	"errors"
	"fmt"
)

// ErrImageInUse: a container still uses the image.
var ErrImageInUse = errors.New("image is in use")

// RemoveImage removes an image reference as `docker rmi`: it refuses when
// the removal would delete an image that a container (of any project, running
// or not) still uses.
func (e *Engine) RemoveImage(ref string) ([]string, error) {
	img, err := e.images.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	// Untagging one of several tags deletes nothing; anything else would
	// delete the image, which no container may still use.
	if img.Ref == "" || len(img.Tags) <= 1 {
		cs, err := e.runtime.List()
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if c.Spec.ImageID == img.ID {
				return nil, fmt.Errorf("image %q: %w by container %s: remove the container first (berth rm or berth down)", ref, ErrImageInUse, c.Spec.Name)
			}
		}
	}
	lines, err := e.images.Remove(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	return lines, nil
}

// ShortID is the 12 hex digits docker shows for an image or container ID.
func ShortID(id string) string {
	if len(id) > 7 && id[:7] == "sha256:" {
		id = id[7:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
