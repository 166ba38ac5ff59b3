// Package image is berth's local OCI image store: content-addressed blobs,
// tags, and layers unpacked once per diff ID and shared read-only by every
// image and container that uses them.
package image

import (
	"context"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Store is the image store under one folder (BERTH_ROOT/images).
type Store struct {
	dir string
}

// Image is one tagged image of the store.
type Image struct {
	// ID is the config digest ("sha256:…"), as docker's image ID.
	ID string
	// Ref is the normalised reference ("docker.io/library/bb:latest");
	// Repo and Tag are its familiar parts ("bb", "latest"). All three are
	// empty for an untagged image.
	Ref, Repo, Tag string
	Created        time.Time
	// Size is the unpacked size of all layers, in bytes, as `docker images`.
	Size int64
	// Config is the image's runtime config (Env, Entrypoint, Cmd,
	// WorkingDir, User, ExposedPorts, Labels, StopSignal, Healthcheck…).
	Config v1.Config
	// DiffIDs are the image's layers, lowest first.
	DiffIDs []v1.Hash
}

// Open opens (creating if needed) the store under dir.
func Open(dir string) (*Store, error) { panic("image.Open: not written yet") }

// ImportOptions tune Import.
type ImportOptions struct {
	// Changes are Dockerfile-like instructions applied to the config, as
	// `docker import --change` (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL,
	// EXPOSE, STOPSIGNAL).
	Changes []string
}

// Import makes an image of one layer from a root filesystem tarball
// (plain, gzip or zstd), tagged ref ("bb" means bb:latest), as `docker import`.
func (s *Store) Import(ctx context.Context, r io.Reader, ref string, opts ImportOptions) (Image, error) {
	panic("not written yet")
}

// Load reads a `docker save` tarball or an OCI image archive and stores every
// image in it under the tags it carries. It returns the images loaded.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Image, error) { panic("not written yet") }

// List returns every tagged image, sorted by repository and tag.
func (s *Store) List() ([]Image, error) { panic("not written yet") }

// Resolve finds an image by reference ("bb", "bb:1", "docker.io/library/bb")
// or by ID or unique ID prefix. ErrNotFound when there is none.
func (s *Store) Resolve(ref string) (Image, error) { panic("not written yet") }

// LayerDirs returns the unpacked directories of img's layers, lowest first,
// ready to be overlay lower directories.
func (s *Store) LayerDirs(img Image) ([]string, error) { panic("not written yet") }

// Remove untags ref; when no tag is left on the image, its manifest, config
// and the layers no other image uses are deleted too. It returns what it did
// as docker prints it ("Untagged: bb:latest", "Deleted: sha256:…"). Whether
// a container still uses the image is the caller's check.
func (s *Store) Remove(ref string) ([]string, error) { panic("not written yet") }
