// Command minimal is the smallest fasthttp forwarder: one HostClient, no
// routing, no headers, no metrics. The benchmark can run it to show the
// ceiling a Go proxy on this machine reaches, next to the real proxy.
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18084", "listen address")
	upstream := flag.String("upstream", "127.0.0.1:19001", "backend host:port")
	flag.Parse()
	hc := &fasthttp.HostClient{Addr: *upstream, MaxConns: 512}
	h := func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}
	s := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true, NoDefaultDate: true}
	log.Fatal(s.ListenAndServe(*addr))
}
