package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// minIDPrefix is the shortest bare hex string taken as an image ID prefix
// ("sha256:"-prefixed forms may be shorter).
const minIDPrefix = 4

// normaliseTag turns a user's reference into the key of the tag index:
// "bb" → "docker.io/library/bb:latest". References by digest cannot be tags.
func normaliseTag(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("reference %q: %w", ref, err)
	}
	named = reference.TagNameOnly(named)
	if _, ok := named.(reference.Tagged); !ok {
		return "", fmt.Errorf("reference %q: a digest cannot be a tag", ref)
	}
	return named.String(), nil
}

// repoDigest is the key of a repository digest in the index:
// "docker.io/library/redis@sha256:…", whatever tag named carries.
func repoDigest(named reference.Named, digest string) string {
	return reference.TrimNamed(named).Name() + "@" + digest
}

// familiar splits a normalised tag into the forms docker shows:
// "docker.io/library/bb:latest" → "bb", "latest".
func familiar(tag string) (repo, t string) {
	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return tag, ""
	}
	if tagged, ok := named.(reference.Tagged); ok {
		t = tagged.Tag()
	}
	return reference.FamiliarName(named), t
}

// familiarString is "bb:latest" for "docker.io/library/bb:latest".
func familiarString(tag string) string {
	repo, t := familiar(tag)
	if t == "" {
		return repo
	}
	return repo + ":" + t
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// match is what a reference resolved to in the index.
type match struct {
	manifest string
	// tag is the tag the reference named, empty when it named an ID or
	// a digest.
	tag string
}

// resolve finds the image ref names, trying, as docker does, a full ID, a
// reference (tag or name@digest), then an ID prefix.
func (idx *index) resolve(ref string) (match, error) {
	if rest, ok := strings.CutPrefix(ref, "sha256:"); ok {
		if !isHex(rest) {
			return match{}, fmt.Errorf("image ID %q: not a hex digest", ref)
		}
		return idx.byIDPrefix(ref, rest)
	}
	named, perr := reference.ParseNormalizedNamed(ref)
	if perr == nil {
		if digested, ok := named.(reference.Digested); ok {
			d := digested.Digest().String()
			if _, ok := idx.Images[d]; ok {
				return match{manifest: d}, nil
			}
			// The digest a registry served the image under (an index's).
			if m, ok := idx.Digests[repoDigest(named, d)]; ok {
				if _, ok := idx.Images[m]; ok {
					return match{manifest: m}, nil
				}
			}
			return match{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
		}
		tag := reference.TagNameOnly(named).String()
		if m, ok := idx.Tags[tag]; ok {
			if _, ok := idx.Images[m]; ok {
				return match{manifest: m, tag: tag}, nil
			}
		}
	}
	if isHex(ref) && len(ref) >= minIDPrefix {
		return idx.byIDPrefix(ref, ref)
	}
	if perr != nil {
		return match{}, fmt.Errorf("image %q: %w", ref, perr)
	}
	return match{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

func (idx *index) byIDPrefix(ref, prefix string) (match, error) {
	var found []string
	for m, rec := range idx.Images {
		if strings.HasPrefix(strings.TrimPrefix(rec.ID, "sha256:"), prefix) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return match{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return match{manifest: found[0]}, nil
	}
	return match{}, fmt.Errorf("%w: %s matches %d images", ErrAmbiguous, ref, len(found))
}
