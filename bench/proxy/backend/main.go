// Command backend is the benchmark's upstream: a fasthttp server that
// answers every request with the same small JSON document, so that what
// the benchmark measures is the proxy in front of it, not the backend.
package main

import (
	"flag"
	"log"
	"strconv"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19001", "listen address")
	name := flag.String("name", "backend", "name reported in the answer")
	size := flag.Int("size", 0, "pad the answer to this many bytes (0: about 100)")
	flag.Parse()
	body := []byte(`{"backend":"` + *name + `","items":[{"id":1,"name":"widget","price":12.5},{"id":2,"name":"gadget","price":3}]}`)
	if *size > len(body) {
		pad := make([]byte, *size-len(body))
		for i := range pad {
			pad[i] = ' '
		}
		body = append(body[:len(body)-1], append(pad, '}')...)
	}
	cl := strconv.Itoa(len(body))
	_ = cl
	h := func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBodyRaw(body)
	}
	s := &fasthttp.Server{Handler: h, Name: "bench-backend", NoDefaultDate: true}
	log.Printf("backend %s on %s", *name, *addr)
	if err := s.ListenAndServe(*addr); err != nil {
		log.Fatal(err)
	}
}
