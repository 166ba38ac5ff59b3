package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/rogpeppe/go-internal/testscript"
)

// startRegistry is the script command `registry [-auth USER:PASSWORD]`: it
// runs go-containerregistry's registry in the test process, on a loopback
// port (plain HTTP, which berth allows on loopback), sets $REGISTRY to its
// host:port, and stops it when the script ends. With -auth it wants those
// credentials (basic auth), as a private registry does.
func startRegistry(ts *testscript.TestScript, neg bool, args []string) {
	var user, password string
	switch {
	case neg:
		ts.Fatalf("usage: registry [-auth USER:PASSWORD]")
	case len(args) == 2 && args[0] == "-auth":
		var ok bool
		if user, password, ok = strings.Cut(args[1], ":"); !ok {
			ts.Fatalf("usage: registry [-auth USER:PASSWORD]")
		}
	case len(args) != 0:
		ts.Fatalf("usage: registry [-auth USER:PASSWORD]")
	}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); user != "" && (!ok || u != user || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	ts.Defer(srv.Close)
	ts.Setenv("REGISTRY", strings.TrimPrefix(srv.URL, "http://"))
}
