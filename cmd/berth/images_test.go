package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/image"
)

// TestImageRows: docker's rows of `images` for tagged, pulled-by-digest and
// dangling images, with and without --digests and the dangling filter.
func TestImageRows(t *testing.T) {
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	list := []image.Image{
		// Two tags of one repository, pulled by tag (so with a digest),
		// listed once per tag by ListAll.
		{ID: "a", Tags: []string{"docker.io/library/redis:7", "docker.io/library/redis:latest"}, Digests: []string{"docker.io/library/redis@" + d1}},
		{ID: "a", Tags: []string{"docker.io/library/redis:7", "docker.io/library/redis:latest"}, Digests: []string{"docker.io/library/redis@" + d1}},
		// Pulled by digest only.
		{ID: "b", Digests: []string{"ghcr.io/o/app@" + d2}},
		{ID: "c", Dangling: true, Digests: []string{"docker.io/library/redis@" + d2}},
	}
	rows := func(digests bool, dangling *bool) []string {
		var out []string
		for _, r := range imageRows(list, digests, dangling) {
			out = append(out, fmt.Sprintf("%s %s %s %s", r.repo, r.tag, r.digest, r.img.ID))
		}
		return out
	}
	yes, no := true, false
	for _, tc := range []struct {
		name     string
		digests  bool
		dangling *bool
		want     []string
	}{
		{"plain", false, nil, []string{
			"ghcr.io/o/app <none>  b",
			"redis 7 <none> a",
			"redis latest <none> a",
			"<none> <none> <none> c",
		}},
		{"digests", true, nil, []string{
			"ghcr.io/o/app <none> " + d2 + " b",
			"redis 7 " + d1 + " a",
			"redis latest " + d1 + " a",
			"<none> <none> <none> c",
		}},
		{"dangling", false, &yes, []string{"<none> <none> <none> c"}},
		{"not dangling", false, &no, []string{
			"ghcr.io/o/app <none>  b",
			"redis 7 <none> a",
			"redis latest <none> a",
		}},
	} {
		if got := rows(tc.digests, tc.dangling); !slices.Equal(got, tc.want) {
			t.Errorf("%s: rows\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}

func TestDanglingFilter(t *testing.T) {
	if f, err := danglingFilter(nil); f != nil || err != nil {
		t.Errorf("no filter: %v, %v", f, err)
	}
	if f, err := danglingFilter([]string{"dangling=true"}); f == nil || !*f || err != nil {
		t.Errorf("dangling=true: %v, %v", f, err)
	}
	for _, bad := range []string{"label=x", "dangling=maybe", "dangling"} {
		if _, err := danglingFilter([]string{bad}); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
