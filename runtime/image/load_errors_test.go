package image

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadRejectsBadArchives(t *testing.T) {
	good := makeTar(t, file("one", "1"))
	cfg := configJSON(t, nil, good)
	hexCfg := sha256Hash(sha256Sum(cfg)).Hex
	save := func(layer []byte, cfg []byte) []byte {
		return tarFiles(t, [][2]string{
			{"l/layer.tar", string(layer)},
			{"c.json", string(cfg)},
			{"manifest.json", dockerManifest(t, dockerManifestEntry{Config: "c.json", RepoTags: []string{"x"}, Layers: []string{"l/layer.tar"}})},
		})
	}
	full := save(good, cfg)
	gzLayer := gzipBytes(t, good)
	corruptGz := slices.Clone(gzLayer)
	corruptGz[len(corruptGz)-6] ^= 0xff // the CRC
	bigLayer := makeTar(t, file("big", strings.Repeat("y", 8192)))
	cfgBig := configJSON(t, nil, bigLayer)

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte(strings.Repeat("not a tar ", 100)), "read archive"},
		{"empty tar", makeTar(t), "neither a docker save"},
		{"truncated archive", full[:700], "unexpected EOF"},
		{"truncated gzip archive", gzipBytes(t, full)[:200], "unexpected EOF"},
		{"layer digest differs from diff ID", save(makeTar(t, file("one", "2")), cfg), "not to the diff ID"},
		{"corrupt gzip layer", save(corruptGz, cfg), "checksum"},
		{"truncated layer", save(bigLayer[:4096], cfgBig), "unexpected EOF"},
		{"missing layer", tarFiles(t, [][2]string{
			{"c.json", string(cfg)},
			{"manifest.json", dockerManifest(t, dockerManifestEntry{Config: "c.json", Layers: []string{"nope/layer.tar"}})},
		}), "nope/layer.tar is not in the archive"},
		{"layer count", tarFiles(t, [][2]string{
			{"c.json", string(cfg)},
			{"manifest.json", dockerManifest(t, dockerManifestEntry{Config: "c.json"})},
		}), "the config has 1 layers"},
		{"bad manifest.json", tarFiles(t, [][2]string{{"manifest.json", "{"}}), "manifest.json"},
		{"OCI blob digest mismatch", tarFiles(t, [][2]string{
			{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`},
			{"blobs/sha256/" + hexCfg, "tampered"},
			{"index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + hexCfg + `","size":8}]}`},
		}), "its content hashes to"},
		{"OCI path digest", tarFiles(t, [][2]string{
			{"index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../x","size":8}]}`},
		}), "non-hex character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Load(context.Background(), bytes.NewReader(tt.data))
			if !errors.Is(err, ErrBadArchive) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadArchive with %q", err, tt.want)
			}
			if files := storeFiles(t, s); len(files) != 0 {
				t.Errorf("left behind: %q", files)
			}
			if exists(filepath.Join(s.dir, indexFile)) {
				t.Errorf("an index was written")
			}
		})
	}
}

// A failed load leaves the images already in the store as they were.
func TestFailedLoadKeepsStore(t *testing.T) {
	s := newStore(t)
	img := importBytes(t, s, makeTar(t, file("keep", "k")), "keep")
	before := storeFiles(t, s)
	l := makeTar(t, file("one", "1"))
	bad := tarFiles(t, [][2]string{
		{"l/layer.tar", string(l[:600])},
		{"c.json", string(configJSON(t, nil, l))},
		{"manifest.json", dockerManifest(t, dockerManifestEntry{Config: "c.json", RepoTags: []string{"keep"}, Layers: []string{"l/layer.tar"}})},
	})
	if _, err := s.Load(context.Background(), bytes.NewReader(bad)); !errors.Is(err, ErrBadArchive) {
		t.Fatalf("err = %v", err)
	}
	if after := storeFiles(t, s); !slices.Equal(before, after) {
		t.Errorf("store changed: %q → %q", before, after)
	}
	if got, err := s.Resolve("keep"); err != nil || got.ID != img.ID {
		t.Errorf("keep = %v, %v", got.ID, err)
	}
}
