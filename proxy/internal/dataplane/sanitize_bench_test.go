package dataplane

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkSanitize measures the request hygiene of the hot path on a
// request like wrk's.
func BenchmarkSanitize(b *testing.B) {
	p := &Plane{}
	raw := "GET /api/m25/items/42 HTTP/1.1\r\nHost: 127.0.0.1:18081\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
	st := statePool.Get().(*reqState)
	sr := strings.NewReader(raw)
	br := bufio.NewReader(sr)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		sr.Reset(raw)
		br.Reset(sr)
		if err := ctx.Request.Header.Read(br); err != nil {
			b.Fatal(err)
		}
		st.reset(&ctx)
		if !p.sanitize(st) {
			b.Fatal("refused")
		}
	}
}
