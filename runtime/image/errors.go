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

	// ErrNotInRegistry: the registry has no such repository, tag or digest.
	ErrNotInRegistry = errors.New("not found in the registry")
	// ErrUnauthorized: the registry refused the credentials it was given,
	// or wants some and was given none.
	ErrUnauthorized = errors.New("access denied by the registry")
	// ErrUnreachable: no answer from the registry (name resolution,
	// connection, TLS, or plain HTTP where it is not allowed).
	ErrUnreachable = errors.New("registry unreachable")
	// ErrDigestMismatch: the registry served content that does not hash to
	// the digest it was asked for. Nothing of it is stored.
	ErrDigestMismatch = errors.New("digest mismatch")
)
