package image

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RegistryOptions are the network settings that Pull and Push share.
type RegistryOptions struct {
	// Insecure lists the registries that may be reached over plain HTTP,
	// or over HTTPS without verifying their certificate, as docker's
	// insecure-registries: "host:port", "host" (any port) or a CIDR
	// ("10.0.0.0/8"). Registries on a loopback address (localhost,
	// 127.0.0.0/8, ::1) are always allowed plain HTTP, as docker allows.
	Insecure []string
	// Keychain finds the credentials of a registry. Nil is
	// authn.DefaultKeychain: ~/.docker/config.json or
	// $DOCKER_CONFIG/config.json, their "auths" and credential helpers.
	Keychain authn.Keychain
}

// allowsHTTP tells whether host ("host[:port]") may be reached over plain
// HTTP: a loopback address, or a registry listed as insecure.
func (o RegistryOptions) allowsHTTP(host string) bool {
	return isLoopback(host) || o.listed(host)
}

// listed tells whether host ("host[:port]") is one of o.Insecure.
func (o RegistryOptions) listed(host string) bool {
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	ip := net.ParseIP(strings.Trim(hostname, "[]"))
	for _, entry := range o.Insecure {
		entry = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(entry, "http://"), "https://"), "/")
		if _, cidr, err := net.ParseCIDR(entry); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		if strings.EqualFold(entry, host) || strings.EqualFold(entry, hostname) {
			return true
		}
	}
	return false
}

// isLoopback tells whether host ("host[:port]") names this machine.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errPlainHTTP: a request would have gone over plain HTTP to a registry
// that is neither on loopback nor listed as insecure.
var errPlainHTTP = errors.New("plain HTTP is allowed only to loopback registries and those listed as insecure")

// guardTransport enforces RegistryOptions on every request, including those
// to token servers and redirects, whatever go-containerregistry's own
// heuristics (which try plain HTTP on private networks) would do.
type guardTransport struct {
	opts RegistryOptions
	// verified checks certificates; unverified is for insecure registries.
	verified, unverified *http.Transport
}

func newGuardTransport(opts RegistryOptions) *guardTransport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	unverified := base.Clone()
	unverified.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return &guardTransport{opts: opts, verified: base, unverified: unverified}
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.URL.Scheme == "http" && !g.opts.allowsHTTP(req.URL.Host):
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s: %w", req.URL.Host, errPlainHTTP)
	case req.URL.Scheme == "https" && g.opts.listed(req.URL.Host):
		return g.unverified.RoundTrip(req)
	}
	return g.verified.RoundTrip(req)
}

func (g *guardTransport) close() {
	g.verified.CloseIdleConnections()
	g.unverified.CloseIdleConnections()
}

// retryBackoff is how often a request that failed for a passing reason
// (a reset connection, 502, 503, 429…) is tried again.
var retryBackoff = transport.Backoff{Duration: 500 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 3}

func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errPlainHTTP) {
		return false
	}
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// registryClient talks to one repository of one registry, authenticated.
type registryClient struct {
	repo   name.Repository
	client *http.Client
	guard  *guardTransport
	// anonymous: the keychain had no credentials for the registry.
	anonymous bool
	// secrets are the strings no message may show.
	secrets []string
}

// connect pings the registry of repo and authenticates for scopes
// (transport.PullScope, transport.PushScope).
func connect(ctx context.Context, opts RegistryOptions, repo name.Repository, scopes ...string) (*registryClient, error) {
	keychain := opts.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	auth, err := keychain.Resolve(repo.Registry)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	c := &registryClient{repo: repo, guard: newGuardTransport(opts), anonymous: auth == authn.Anonymous}
	if cfg, err := auth.Authorization(); err == nil && cfg != nil {
		c.anonymous = c.anonymous || *cfg == (authn.AuthConfig{})
		c.secrets = secretsOf(cfg)
	}
	retrying := transport.NewRetry(c.guard,
		transport.WithRetryBackoff(retryBackoff),
		transport.WithRetryPredicate(retryable),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	var full []string
	for _, s := range scopes {
		full = append(full, repo.Scope(s))
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, retrying, full)
	if err != nil {
		c.close()
		return nil, c.explain(err)
	}
	c.client = &http.Client{Transport: t}
	return c, nil
}

func (c *registryClient) close() { c.guard.close() }

func secretsOf(cfg *authn.AuthConfig) []string {
	var out []string
	for _, s := range []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken} {
		if len(s) >= 3 {
			out = append(out, s)
		}
	}
	if cfg.Password != "" {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)))
	}
	return out
}

// get sends GET /v2/<repo>/<kind>/<id> and returns the response of status
// 200, or the registry's error.
func (c *registryClient) get(ctx context.Context, kind, id string, accept ...string) (*http.Response, error) {
	// The transport puts the scheme the ping found (http or https).
	u := fmt.Sprintf("https://%s/v2/%s/%s/%s", c.repo.RegistryStr(), c.repo.RepositoryStr(), kind, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if len(accept) > 0 {
		req.Header.Set("Accept", strings.Join(accept, ", "))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.explain(err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, c.explain(err)
	}
	return resp, nil
}

// registryError is a registry's failure told in one line, matching its
// sentinel (ErrNotInRegistry, ErrUnauthorized, ErrUnreachable) and its cause
// with errors.Is and errors.As.
type registryError struct {
	kind  error
	msg   string
	cause error
}

func (e *registryError) Error() string { return e.msg }

func (e *registryError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.cause}
	}
	return []error{e.kind, e.cause}
}

// explain turns an error of the registry's protocol or of the network into
// a one-line registryError. Cancellation passes through as it is.
func (c *registryClient) explain(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var already *registryError
	if errors.As(err, &already) {
		return err
	}
	reg := c.repo.RegistryStr()
	var terr *transport.Error
	switch {
	case errors.As(err, &terr):
		answer := c.scrub(registryAnswer(terr))
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden || hasCode(terr, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			login := "docker login " + reg
			if reg == name.DefaultRegistry {
				login = "docker login"
			}
			what := "wrong credentials, or no access to " + c.repo.RepositoryStr()
			next := "check the credentials for " + reg + " in " + dockerConfigPath() + " (" + login + ")"
			if c.anonymous {
				// Docker Hub answers so for a repository that does not exist.
				what = c.repo.RepositoryStr() + " does not exist or wants credentials"
				next = "no credentials for " + reg + " in " + dockerConfigPath() + ": log in with " + login
			}
			return &registryError{ErrUnauthorized, fmt.Sprintf("%s %s: %s (the registry says %s): %s", ErrUnauthorized, reg, what, answer, next), err}
		case terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
			return &registryError{ErrNotInRegistry, fmt.Sprintf("%s %s (the registry says %s)", ErrNotInRegistry, reg, answer), err}
		}
		return &registryError{nil, fmt.Sprintf("registry %s: %s", reg, answer), err}
	case errors.Is(err, errPlainHTTP):
		return &registryError{ErrUnreachable, fmt.Sprintf("%s: %s answers only plain HTTP, and %s: list it as an insecure registry if that is meant", ErrUnreachable, reg, errPlainHTTP), err}
	case errors.Is(err, http.ErrSchemeMismatch):
		return &registryError{ErrUnreachable, fmt.Sprintf("%s: %s answers plain HTTP to HTTPS: list it as an insecure registry if that is meant", ErrUnreachable, reg), err}
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		return &registryError{ErrUnreachable, fmt.Sprintf("%s: %s: %s (list it as an insecure registry to skip the check)", ErrUnreachable, reg, oneLine(c.scrub(certErr.Error()))), err}
	case errors.As(err, &dnsErr):
		return &registryError{ErrUnreachable, fmt.Sprintf("%s: %s: %s", ErrUnreachable, reg, oneLine(dnsErr.Error())), err}
	case errors.As(err, &opErr):
		return &registryError{ErrUnreachable, fmt.Sprintf("%s: %s: %s", ErrUnreachable, reg, oneLine(opErr.Error())), err}
	}
	return &registryError{nil, fmt.Sprintf("registry %s: %s", reg, oneLine(c.scrub(err.Error()))), err}
}

func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		if slices.Contains(codes, d.Code) {
			return true
		}
	}
	return false
}

// registryAnswer is what the registry said: its status and its errors
// ("404 Not Found: MANIFEST_UNKNOWN: manifest unknown").
func registryAnswer(terr *transport.Error) string {
	s := fmt.Sprintf("%d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
	for _, d := range terr.Errors {
		s += ": " + string(d.Code)
		if d.Message != "" {
			s += ": " + d.Message
		}
	}
	return oneLine(s)
}

// scrub removes the credentials from a message: a registry could echo them.
func (c *registryClient) scrub(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// oneLine folds a message from elsewhere onto one line of bounded length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 300
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// dockerConfigPath is where authn.DefaultKeychain reads credentials.
func dockerConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	return "~/.docker/config.json"
}
