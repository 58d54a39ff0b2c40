// Package proxytest starts real proxies and backends on loopback for tests,
// in the style of Skipper's proxytest: a test builds the route table it
// needs, gets the proxy's URLs and an admin client, and the proxy stops
// when the test ends.
package proxytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/adminclient"
)

// Token is the admin token of test proxies.
const Token = "proxytest-admin-token-0123456789"

// Config says how to start a test proxy.
type Config struct {
	// Legacy is the legacy backend's URL.
	Legacy string
	// Routes, if set, is a YAML route table written to the routes file
	// that the proxy watches. Without it the proxy starts on its
	// persisted state or the default table.
	Routes string
	// Dir holds the state, the routes file and the access log. Reuse it
	// to restart a proxy on the same state. If empty, a temp dir.
	Dir string
	// Tune adjusts the proxy config before it starts.
	Tune func(*proxy.Config)
}

// Proxy is a running test proxy.
type Proxy struct {
	*proxy.Proxy
	// URL is the data plane's base URL, AdminURL the admin API's.
	URL, AdminURL string
	// Dir is the state directory's parent; RoutesFile the routes file.
	Dir, RoutesFile string
	// Access collects the access log.
	Access *Buffer
	// Log collects the proxy's own log.
	Log *Buffer

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Start starts a proxy on 127.0.0.1:0 and stops it when the test ends.
func Start(t testing.TB, c Config) *Proxy {
	t.Helper()
	dir := c.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := proxy.Config{
		Addr:       "127.0.0.1:0",
		AdminAddr:  "127.0.0.1:0",
		AdminToken: Token,
		Legacy:     c.Legacy,
		StateDir:   filepath.Join(dir, "state"),
	}
	if cfg.Legacy == "" {
		cfg.Legacy = "http://127.0.0.1:1"
	}
	routesFile := ""
	if c.Routes != "" {
		routesFile = filepath.Join(dir, "routes.yaml")
		if err := os.WriteFile(routesFile, []byte(c.Routes), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg.RoutesFile = routesFile
	}
	cfg.SetDefaults(dir)
	if c.Tune != nil {
		c.Tune(&cfg)
	}
	access, logs := &Buffer{}, &Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := proxy.New(cfg, log, proxy.WithAccessLogWriter(access))
	if err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tp := &Proxy{Proxy: p, URL: "http://" + p.Addr(), AdminURL: "http://" + p.AdminAddr(), Dir: dir, RoutesFile: routesFile,
		Access: access, Log: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { tp.done <- p.Run(ctx) }()
	t.Cleanup(func() { tp.Stop(t) })
	WaitReady(t, tp.AdminURL+"/healthz")
	return tp
}

// Stop stops the proxy and waits for it, failing the test if Run failed.
func (p *Proxy) Stop(t testing.TB) {
	p.once.Do(func() {
		p.cancel()
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("proxy stopped with an error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("proxy did not stop within 30s")
		}
	})
}

// Admin returns a client of the proxy's admin API.
func (p *Proxy) Admin(t testing.TB) *adminclient.Client {
	t.Helper()
	c, err := adminclient.New(p.AdminURL, Token, adminclient.WithActor("tester@test"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// WriteRoutes replaces the routes file; the proxy reloads it.
func (p *Proxy) WriteRoutes(t testing.TB, yaml string) {
	t.Helper()
	tmp := p.RoutesFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.RoutesFile); err != nil {
		t.Fatal(err)
	}
}

// WaitReady polls url until it answers 200, for up to 10 seconds.
func WaitReady(t testing.TB, url string) {
	t.Helper()
	Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "%s never answered 200", url)
}

// Eventually polls cond every 20 ms until it holds or the deadline
// passes. Deadlines are generous: tests run on loaded machines.
func Eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Buffer is a concurrency-safe bytes.Buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines decodes the JSON lines written so far.
func (b *Buffer) Lines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Echo is what an echo backend answers: who it is and what it received.
type Echo struct {
	Backend string              `json:"backend"`
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// Backend is a test backend.
type Backend struct {
	*httptest.Server
	Name string
	mu   sync.Mutex
	hits int
}

// Hits returns how many requests the backend received.
func (b *Backend) Hits() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits
}

// EchoBackend starts a backend that answers every request with an Echo.
func EchoBackend(t testing.TB, name string) *Backend {
	t.Helper()
	b := &Backend{Name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hits++
		b.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		e := Echo{Backend: name, Method: r.Method, URI: r.RequestURI, Host: r.Host, Headers: r.Header, Body: string(body)}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(b.Close)
	return b
}

// HandlerBackend starts a backend with a handler of the test's own.
func HandlerBackend(t testing.TB, name string, h http.Handler) *Backend {
	t.Helper()
	b := &Backend{Name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hits++
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// Get sends a GET through the proxy and decodes an Echo answer. It fails
// the test on a transport error.
func Get(t testing.TB, url string, header map[string]string) (*http.Response, *Echo) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	var e Echo
	if json.Unmarshal(body, &e) != nil || e.Backend == "" {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, &e
}

// RawGet sends one GET for path to addr on a fresh connection, with
// Connection: close, and returns the answer with its body read. It dials
// and reads under deadlines of its own, for a server that may be too busy
// to accept (out of file descriptors): an error is an answer too.
func RawGet(addr, path string) (*http.Response, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", path); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, err
}

// SortedKeys returns a map's keys sorted, for stable failure messages.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
