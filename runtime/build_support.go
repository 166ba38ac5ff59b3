package runtime

import "path/filepath"

// UpperDir is the container's own layer, the overlay's upper directory, in
// overlay form: what its processes created or changed, deletions as 0/0
// character devices, replaced directories marked trusted.overlay.opaque.
// Once the container has exited nothing writes to it: a Dockerfile build
// commits it as the layer of a RUN step.
func (c *Container) UpperDir() string { return filepath.Join(c.Dir, upperDir) }
