package dataplane

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"
)

// Header flags found by scanHeaders.
const (
	hConnection uint32 = 1 << iota
	hKeepAlive
	hProxyConnection
	hProxyAuth
	hTE
	hTrailer
	hUpgrade
	hTransferEncoding
	hForwarded
	hRealIP
	hRequestID
	hTraceparent
	hExpect
	hXFF
	hXFProto
	hXFHost
	// hObsFold is a header line continued on the next (obsolete line
	// folding, RFC 9112 §5.2), which fasthttp joins into one value.
	hObsFold
)

// maxDeletes bounds the internal headers collected in one pass; a request
// with more sends scanHeaders' caller to a slow, complete sweep.
const maxDeletes = 16

// headerScan is what one pass over the raw request headers found.
type headerScan struct {
	flags          uint32
	contentLengths int
	// del are internal headers to remove: X-Strangler-*, X-Forwarded-*
	// other than For/Proto/Host, and the configured ones. They point into
	// the raw header block, which stays valid for the request.
	del      [maxDeletes][]byte
	ndel     int
	overflow bool
}

// internalHeaders says which client request headers are internal and
// removed: X-Strangler-*, X-Forwarded-* other than For, Proto and Host
// (which the proxy rewrites), the configured names, and names with an
// underscore unless they are allowed. Many backends read an underscore as a
// dash, so with underscores allowed a name is still internal when it reads
// as one with dashes (X-Strangler_Shadow, X_Forwarded_For).
type internalHeaders struct {
	// names are the configured ones in lower case, with dashes for
	// underscores, as foldDash compares them.
	names       []string
	underscores bool
}

func newInternalHeaders(names []string, underscores bool) *internalHeaders {
	ih := &internalHeaders{underscores: underscores}
	for _, n := range names {
		ih.names = append(ih.names, strings.ReplaceAll(strings.ToLower(n), "_", "-"))
	}
	return ih
}

// dropped reports whether the header named key is internal. A nil ih is
// the zero config: no configured names, underscores dropped.
func (ih *internalHeaders) dropped(key []byte) bool {
	under := bytes.IndexByte(key, '_') >= 0
	if under && (ih == nil || !ih.underscores) {
		return true
	}
	if len(key) > 12 && key[0]|0x20 == 'x' {
		if foldDash(key[:12], "x-strangler-") {
			return true
		}
		if foldDash(key[:12], "x-forwarded-") {
			return under || !(fold(key, "x-forwarded-for") || fold(key, "x-forwarded-proto") || fold(key, "x-forwarded-host"))
		}
	}
	if under && (foldDash(key, "forwarded") || foldDash(key, "x-real-ip")) {
		return true
	}
	if ih == nil {
		return false
	}
	for _, h := range ih.names {
		if foldDash(key, h) {
			return true
		}
	}
	return false
}

// scanHeaders classifies the request's headers in one pass over the raw
// block as received, without touching fasthttp's parsed view.
func scanHeaders(raw []byte, s *headerScan, internal *internalHeaders) {
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n')
		var line []byte
		if end < 0 {
			line, raw = raw, nil
		} else {
			line, raw = raw[:end], raw[end+1:]
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			s.flags |= hObsFold
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		key := line[:colon]
		switch len(key) {
		case 2:
			if fold(key, "te") {
				s.flags |= hTE
			}
		case 6:
			if fold(key, "expect") {
				s.flags |= hExpect
			}
		case 7:
			switch {
			case fold(key, "trailer"):
				s.flags |= hTrailer
			case fold(key, "upgrade"):
				s.flags |= hUpgrade
			}
		case 9:
			switch {
			case fold(key, "forwarded"):
				s.flags |= hForwarded
			case fold(key, "x-real-ip"):
				s.flags |= hRealIP
			}
		case 10:
			switch {
			case fold(key, "connection"):
				s.flags |= hConnection
			case fold(key, "keep-alive"):
				s.flags |= hKeepAlive
			}
		case 11:
			if fold(key, "traceparent") {
				s.flags |= hTraceparent
			}
		case 12:
			if fold(key, "x-request-id") {
				s.flags |= hRequestID
			}
		case 14:
			if fold(key, "content-length") {
				s.contentLengths++
			}
		case 15:
			if fold(key, "x-forwarded-for") {
				s.flags |= hXFF
				continue
			}
		case 16:
			if fold(key, "proxy-connection") {
				s.flags |= hProxyConnection
			}
		case 17:
			switch {
			case fold(key, "transfer-encoding"):
				s.flags |= hTransferEncoding
			case fold(key, "x-forwarded-proto"):
				s.flags |= hXFProto
				continue
			}
		case 18:
			if fold(key, "proxy-authenticate") {
				s.flags |= hProxyAuth
			}
		case 19:
			if fold(key, "proxy-authorization") {
				s.flags |= hProxyAuth
			}
		}
		if len(key) == 16 && fold(key, "x-forwarded-host") {
			s.flags |= hXFHost
			continue
		}
		if internal.dropped(key) {
			s.addDelete(key)
		}
	}
}

func (s *headerScan) addDelete(key []byte) {
	if s.ndel == maxDeletes {
		s.overflow = true
		return
	}
	s.del[s.ndel] = key
	s.ndel++
}

// fold compares b with the lower-case ASCII string s, ignoring case.
func fold(b []byte, s string) bool { return foldAs(b, s, false) }

// foldDash is fold with an underscore in b matching a dash in s.
func foldDash(b []byte, s string) bool { return foldAs(b, s, true) }

func foldAs(b []byte, s string, dash bool) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if dash && c == '_' {
			c = '-'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// stripConnectionListed removes the headers that a Connection header names,
// which are hop-by-hop by declaration (RFC 9110 §7.6.1), then the
// Connection header itself. keepUpgrade keeps "Connection: upgrade" for a
// WebSocket handshake.
func stripConnectionListed(h interface {
	Peek(string) []byte
	DelBytes([]byte)
	Del(string)
	Set(string, string)
}, keepUpgrade bool) {
	v := h.Peek("Connection")
	if len(v) == 0 {
		return
	}
	upgrade := false
	// Copy: deleting headers may reuse the buffer v points into.
	var buf [256]byte
	tokens := append(buf[:0], v...)
	for len(tokens) > 0 {
		var tok []byte
		if i := bytes.IndexByte(tokens, ','); i >= 0 {
			tok, tokens = tokens[:i], tokens[i+1:]
		} else {
			tok, tokens = tokens, nil
		}
		tok = bytes.TrimSpace(tok)
		switch {
		case len(tok) == 0, fold(tok, "close"), fold(tok, "keep-alive"):
		case fold(tok, "upgrade"):
			upgrade = true
		default:
			h.DelBytes(tok)
		}
	}
	h.Del("Connection")
	if keepUpgrade && upgrade {
		h.Set("Connection", "Upgrade")
	}
}

// dropTrailers removes the trailer section that fasthttp parsed at the end
// of a chunked request body, and the names it announced. Trailers arrive
// after the header hygiene ran, so they could carry internal headers
// (X-Strangler-*, the configured ones, Forwarded) to the backend; the proxy
// forwards none, as HTTP lets a proxy do (RFC 9110 §6.5.1). Values of the
// same names in the header section are kept.
func dropTrailers(h *fasthttp.RequestHeader) {
	var names [][]byte
	for k := range h.Trailers() {
		names = append(names, append([]byte(nil), k...))
	}
	if len(names) == 0 {
		return
	}
	// Del removes a name from both sections; the header section's values
	// go back after.
	var keep [][2][]byte
	for k, v := range h.All() {
		for _, n := range names {
			if bytes.EqualFold(k, n) {
				keep = append(keep, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
				break
			}
		}
	}
	for _, n := range names {
		h.DelBytes(n)
	}
	h.Del("Trailer")
	for _, kv := range keep {
		h.AddBytesKV(kv[0], kv[1])
	}
}

// noTrailers reads a chunked request body and drops its trailers when the
// body ends: fasthttp parses them into the request's header as the last
// chunk is read, before the forwarded request writes its trailer section.
type noTrailers struct {
	r io.Reader
	h *fasthttp.RequestHeader
}

func (n *noTrailers) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err == io.EOF {
		dropTrailers(n.h)
	}
	return k, err
}

// trustedNets is the parsed list of trusted proxies.
type trustedNets []netip.Prefix

func parseTrusted(list []string) trustedNets {
	var out trustedNets
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

func (t trustedNets) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr returns the address of the connection's peer.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// clientAddr finds the client behind trusted proxies: the right-most
// X-Forwarded-For entry that is not itself a trusted proxy.
func clientAddr(xff []byte, peer netip.Addr, trusted trustedNets) netip.Addr {
	if len(trusted) == 0 || !trusted.contains(peer) || len(xff) == 0 {
		return peer
	}
	client := peer
	for len(xff) > 0 {
		i := bytes.LastIndexByte(xff, ',')
		part := bytes.TrimSpace(xff[i+1:])
		if i < 0 {
			xff = nil
		} else {
			xff = xff[:i]
		}
		a, err := netip.ParseAddr(string(part))
		if err != nil {
			return client
		}
		a = a.Unmap()
		client = a
		if !trusted.contains(a) {
			return a
		}
	}
	return client
}

const hexDigits = "0123456789abcdef"

// hexPairs holds the two hex digits of every byte.
var hexPairs = func() (t [512]byte) {
	for i := range 256 {
		t[2*i], t[2*i+1] = hexDigits[i>>4], hexDigits[i&0xf]
	}
	return t
}()

func appendHex64(dst []byte, v uint64) []byte {
	var b [16]byte
	for i := 7; i >= 0; i-- {
		x := int(v&0xff) * 2
		b[2*i], b[2*i+1] = hexPairs[x], hexPairs[x+1]
		v >>= 8
	}
	return append(dst, b[:]...)
}

// appendRequestID appends a new random 128-bit request ID in hex.
func appendRequestID(dst []byte) []byte {
	dst = appendHex64(dst, rand.Uint64())
	return appendHex64(dst, rand.Uint64())
}

// validRequestID mirrors httpx.ValidRequestID on bytes.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// nextTraceparent appends the traceparent to send upstream (W3C Trace
// Context): the incoming trace ID and flags with a new parent ID for the
// proxy's hop, or a new trace when the incoming header is absent or
// invalid. It returns the trace ID's position in dst for the access log.
func nextTraceparent(dst, in []byte) []byte {
	if validTraceparent(in) {
		dst = append(dst, in[:36]...) // "00-" + trace-id + "-"
		dst = appendHex64(dst, nonZero())
		return append(dst, in[52:55]...) // "-" + flags
	}
	dst = append(dst, "00-"...)
	dst = appendHex64(dst, rand.Uint64())
	dst = appendHex64(dst, nonZero())
	dst = append(dst, '-')
	dst = appendHex64(dst, nonZero())
	return append(dst, "-00"...)
}

func nonZero() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

// validTraceparent checks version 00's layout: 00-<32 hex>-<16 hex>-<2 hex>,
// with IDs that are not all zeros. Later versions may be longer; their first
// 55 bytes have the same layout.
func validTraceparent(v []byte) bool {
	if len(v) < 55 || (len(v) > 55 && (v[0] == '0' && v[1] == '0' || v[55] != '-')) {
		return false
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	if v[0] == 'f' && v[1] == 'f' {
		return false
	}
	for _, r := range [][2]int{{0, 2}, {3, 35}, {36, 52}, {53, 55}} {
		for i := r[0]; i < r[1]; i++ {
			c := v[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return !allZero(v[3:35]) && !allZero(v[36:52])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}
