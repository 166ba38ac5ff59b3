package image

import "errors"

var (
	// ErrNotFound: no image matches the reference.
	ErrNotFound = errors.New("no such image")
	// ErrAmbiguous: an ID prefix matches more than one image.
	ErrAmbiguous = errors.New("ambiguous image ID prefix")
	// ErrBadArchive: a tarball is corrupt, truncated, of an unknown format,
	// or holds entries that would escape the root (../, absolute, symlinks).
	ErrBadArchive = errors.New("invalid image archive")
)
