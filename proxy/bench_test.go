package proxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/stranglerkit/strangler/httpx"
)

// benchBody is what the benchmark backend answers.
var benchBody = []byte(`{"backend":"app","items":[{"id":1,"name":"widget","price":12.5},{"id":2,"name":"gadget","price":3}]}`)

// benchBackend starts an in-memory backend and returns a Dialer that
// reaches it: the benchmark measures the proxy's own CPU, without the
// kernel's TCP stack.
func benchBackend(b *testing.B) Dialer {
	back := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBodyRaw(benchBody)
	}}
	go srv.Serve(back) //nolint:errcheck
	b.Cleanup(func() { back.Close() })
	return func(string, time.Duration) (net.Conn, error) { return back.Dial() }
}

// benchFront serves on an in-memory listener and returns a client that
// reaches it.
func benchFront(b *testing.B, serve func(ln net.Listener)) *fasthttp.HostClient {
	front := fasthttputil.NewInmemoryListener()
	b.Cleanup(func() { front.Close() })
	go serve(front)
	return &fasthttp.HostClient{Addr: "proxy", MaxConns: 1024, Dial: func(string) (net.Conn, error) { return front.Dial() }}
}

func runBench(b *testing.B, client *fasthttp.HostClient, path string) {
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI("http://proxy" + path)
		for pb.Next() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("%v %d", err, resp.StatusCode())
				return
			}
		}
	})
}

// BenchmarkMinimalForwarder is the floor: a fasthttp forwarder that does
// nothing but forward.
func BenchmarkMinimalForwarder(b *testing.B) {
	dial := benchBackend(b)
	var hc *fasthttp.HostClient
	client := benchFront(b, func(ln net.Listener) {
		s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error("bad gateway", 502)
			}
		}}
		_ = s.Serve(ln)
	})
	hc = &fasthttp.HostClient{Addr: "backend", MaxConns: 1024, Dial: func(addr string) (net.Conn, error) { return dial(addr, time.Second) }}
	runBench(b, client, "/api/m25/items/42")
}

// BenchmarkProxy runs the proxy with 50 routes, metrics and the access log
// on (written to a file), in front of the same backend.
func BenchmarkProxy(b *testing.B) {
	for _, mode := range []string{"legacy", "shadow"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			table := "backends:\n  candidate: {urls: [\"http://127.0.0.1:2\"]}\nmodules:\n  - name: default\n    routes: [{id: default, prefix: /}]\n"
			for i := 1; i < 50; i++ {
				m := ""
				if i == 25 && mode == "shadow" {
					m = "\n    mode: shadow"
				}
				table += fmt.Sprintf("  - name: m%02d\n    candidate: candidate%s\n    routes: [{id: m%02d, prefix: /api/m%02d}]\n", i, m, i, i)
			}
			file := filepath.Join(dir, "routes.yaml")
			if err := os.WriteFile(file, []byte(table), 0o644); err != nil {
				b.Fatal(err)
			}
			cfg := Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", AdminToken: "bench-token-0123456789", Legacy: "http://127.0.0.1:1", RoutesFile: file}
			cfg.AccessLog.Path = filepath.Join(dir, "access.log")
			cfg.SetDefaults(dir)
			p, err := New(cfg, httpx.Discard, WithDialer(benchBackend(b)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = p.Close() })
			// The data plane serves the in-memory listener, with the
			// background work it runs in Run.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			client := benchFront(b, func(ln net.Listener) { defer close(done); _ = p.dp.Run(ctx, ln) })
			b.Cleanup(func() { cancel(); <-done })
			runBench(b, client, "/api/m25/items/42")
		})
	}
}
