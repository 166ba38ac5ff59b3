package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, name := range []string{"a", "web", "hello_web-1", "My.Vol_2", "0", strings.Repeat("x", 200)} {
		if err := validName(name); err != nil {
			t.Errorf("validName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "../x", "a/b", "/abs", "-x", "_x", ".hidden",
		"a b", "a\x00", "é", "a:b", strings.Repeat("x", 201)} {
		if err := validName(name); err == nil {
			t.Errorf("validName(%q) accepted it", name)
		}
	}
}

func TestVolumes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volumes")
	v, err := NewVolumes(root)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"com.docker.compose.project": "hello"}
	vol, created, err := v.Ensure("hello_data", labels)
	if err != nil || !created {
		t.Fatalf("Ensure: %+v %v %v", vol, created, err)
	}
	if vol.Path != filepath.Join(root, "hello_data", "_data") || vol.Labels["com.docker.compose.project"] != "hello" || vol.CreatedAt.IsZero() {
		t.Errorf("volume %+v", vol)
	}
	fi, err := os.Stat(vol.Path)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("data dir: %v %v", fi, err)
	}
	if err := os.WriteFile(filepath.Join(vol.Path, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Again: the same volume, its data and labels kept.
	again, created, err := v.Ensure("hello_data", map[string]string{"other": "x"})
	if err != nil || created || again.Path != vol.Path || again.Labels["other"] != "" || !again.CreatedAt.Equal(vol.CreatedAt) {
		t.Fatalf("second Ensure: %+v %v %v", again, created, err)
	}
	if data, _ := os.ReadFile(filepath.Join(again.Path, "f")); string(data) != "kept" {
		t.Errorf("data lost: %q", data)
	}
	got, err := v.Get("hello_data")
	if err != nil || got.Name != "hello_data" || got.Path != vol.Path {
		t.Fatalf("Get: %+v %v", got, err)
	}

	if _, _, err := v.Ensure("b", nil); err != nil {
		t.Fatal(err)
	}
	// A half-written volume of a berth that was killed is not listed, and
	// goes.
	stale := filepath.Join(root, fmt.Sprintf("%s%d-%d-%s-%s", creatingPrefix, 1<<22+1, 1, "00", "half"))
	if err := os.MkdirAll(filepath.Join(stale, "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
	}
	if strings.Join(names, ",") != "b,hello_data" {
		t.Errorf("List: %v", names)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary volume kept: %v", err)
	}

	if err := v.Remove("hello_data"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get("hello_data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	} else if err.Error() != "no such volume: hello_data" {
		t.Errorf("message %q", err)
	}
	if err := v.Remove("hello_data"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 || entries[0].Name() != "b" {
		t.Errorf("store holds %v", entries)
	}
}

func TestVolumeNamesCannotEscape(t *testing.T) {
	parent := t.TempDir()
	v, err := NewVolumes(filepath.Join(parent, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"..", "../escape", "/tmp/x", "a/../../b", ""} {
		if _, _, err := v.Ensure(name, nil); err == nil {
			t.Errorf("Ensure(%q) accepted it", name)
		}
		if _, err := v.Get(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", name, err)
		}
		if err := v.Remove(name); err != nil {
			t.Errorf("Remove(%q): %v", name, err)
		}
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("something was written outside the store: %v", entries)
	}
}
