package image

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestPullNotFound(t *testing.T) {
	reg := newTestRegistry(t)
	s := newStore(t)
	_, err := s.Pull(context.Background(), reg.ref("nope"), PullOptions{})
	if !errors.Is(err, ErrNotInRegistry) {
		t.Fatalf("err = %v, want ErrNotInRegistry", err)
	}
	msg := err.Error()
	for _, want := range []string{"pull " + reg.ref("nope:latest") + ": ", "not found in the registry " + reg.host, "404 Not Found"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message of more than one line: %q", msg)
	}
	if files := storeFiles(t, s); len(files) != 0 {
		t.Errorf("left behind: %q", files)
	}

	if _, err := s.Pull(context.Background(), "Bad:Ref:", PullOptions{}); err == nil || !strings.Contains(err.Error(), `reference "Bad:Ref:"`) {
		t.Errorf("bad reference: %v", err)
	}
}

func TestPullUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	s := newStore(t)
	_, err = s.Pull(context.Background(), host+"/app", PullOptions{})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "registry unreachable: "+host) || !strings.Contains(msg, "connection refused") || strings.Contains(msg, "\n") {
		t.Errorf("message: %q", msg)
	}
}

func TestPullAuth(t *testing.T) {
	reg := newTestRegistry(t)
	reg.user, reg.password = "berth", "s3cret-Pa55"
	img := ggcrImage(t, runtime.GOARCH, []string{"private"}, layerTar(t, "etc/p", "p\n"))
	reg.push(t, "private/app:1", img)

	t.Run("right credentials", func(t *testing.T) {
		dockerConfig(t, reg.host, "berth", "s3cret-Pa55")
		s := newStore(t)
		got := pull(t, s, reg.ref("private/app:1"), PullOptions{})
		if got.ID != configDigest(t, img).String() {
			t.Errorf("pulled %s", got.ID)
		}
		// Push with the same credentials.
		if err := s.Tag(reg.ref("private/app:1"), reg.ref("private/copy:2")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Push(context.Background(), reg.ref("private/copy:2"), PushOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("credential helper", func(t *testing.T) {
		// A docker-credential-<name> program on PATH, named by credHelpers.
		bin := t.TempDir()
		helper := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n" +
			"printf '{\"ServerURL\":\"%s\",\"Username\":\"berth\",\"Secret\":\"s3cret-Pa55\"}' \"$server\"\n"
		if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(helper), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		dir := t.TempDir()
		cfg := `{"credHelpers": {"` + reg.host + `": "berthtest"}}`
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
		pull(t, newStore(t), reg.ref("private/app:1"), PullOptions{})
	})

	for _, tc := range []struct {
		name, user, password, want string
	}{
		{"wrong password", "berth", "wrong-Pa55w0rd", "wrong credentials"},
		{"no credentials", "", "", "no credentials for " + reg.host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dockerConfig(t, reg.host, tc.user, tc.password)
			s := newStore(t)
			_, err := s.Pull(context.Background(), reg.ref("private/app:1"), PullOptions{})
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
			msg := err.Error()
			for _, want := range []string{"pull " + reg.ref("private/app:1"), tc.want, "401 Unauthorized"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			for _, secret := range []string{"s3cret-Pa55", "wrong-Pa55w0rd", "YmVydGg6"} { // base64("berth:")
				if strings.Contains(msg, secret) {
					t.Errorf("message %q shows a secret", msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message of more than one line: %q", msg)
			}
			_, err = s.Push(context.Background(), "nothing-here", PushOptions{})
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("push of an image the store lacks: %v", err)
			}
		})
	}
}

func TestRegistryOptionsAllowHTTP(t *testing.T) {
	opts := RegistryOptions{Insecure: []string{"reg.internal:5000", "10.1.0.0/16", "plain.example"}}
	for host, want := range map[string]bool{
		"localhost:5000":     true,
		"127.0.0.1":          true,
		"127.8.9.10:80":      true,
		"[::1]:5000":         true,
		"reg.internal:5000":  true,
		"reg.internal:5001":  false,
		"10.1.2.3:5000":      true,
		"10.2.0.1:5000":      false,
		"192.168.1.5:5000":   false,
		"plain.example:8080": true,
		"docker.io":          false,
	} {
		if got := opts.allowsHTTP(host); got != want {
			t.Errorf("allowsHTTP(%s) = %v, want %v", host, got, want)
		}
	}
	// Refused before any connection is tried.
	g := newGuardTransport(RegistryOptions{})
	req, err := http.NewRequest(http.MethodGet, "http://192.168.1.5:5000/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.RoundTrip(req); !errors.Is(err, errPlainHTTP) {
		t.Errorf("plain HTTP to a private address: %v", err)
	}
}

func TestParsePullRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		ref, display, id, tag, registry, repo string
	}{
		{"redis", "docker.io/library/redis:latest", "latest", "docker.io/library/redis:latest", "index.docker.io", "library/redis"},
		{"redis:7", "docker.io/library/redis:7", "7", "docker.io/library/redis:7", "index.docker.io", "library/redis"},
		{"bitnami/redis:7", "docker.io/bitnami/redis:7", "7", "docker.io/bitnami/redis:7", "index.docker.io", "bitnami/redis"},
		{"ghcr.io/o/app@" + d, "ghcr.io/o/app@" + d, d, "", "ghcr.io", "o/app"},
		{"localhost:5000/app:1@" + d, "localhost:5000/app:1@" + d, d, "", "localhost:5000", "app"},
	} {
		pr, err := parsePullRef(tc.ref)
		if err != nil {
			t.Errorf("%s: %v", tc.ref, err)
			continue
		}
		if pr.display != tc.display || pr.id != tc.id || pr.tag != tc.tag {
			t.Errorf("%s: %+v", tc.ref, pr)
		}
		repo, err := repository(pr.named, RegistryOptions{})
		if err != nil || repo.RegistryStr() != tc.registry || repo.RepositoryStr() != tc.repo {
			t.Errorf("%s: repository %s %s, %v", tc.ref, repo.RegistryStr(), repo.RepositoryStr(), err)
		}
	}
	for _, bad := range []string{"UPPER", "app:", "app@sha256:abc", ""} {
		if _, err := parsePullRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
