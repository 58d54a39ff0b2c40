// Package page implements the shop's cursor pagination. A cursor is opaque to
// clients: it is the position after the last item of a page, tagged with the
// list it belongs to, in URL-safe base64. Lists read limit+1 rows to learn
// whether a next page exists, so no count query is needed.
package page

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	"github.com/stranglerkit/strangler/httpx"
)

// The page sizes every list accepts.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// maxCursorLen bounds what Decode reads, so that a hostile cursor cannot make
// the server decode megabytes of JSON.
const maxCursorLen = 512

// Limit returns the page size for a requested limit: DefaultLimit for 0, and
// a 400 problem for anything outside 1..MaxLimit.
func Limit(n int) (int, error) {
	if n == 0 {
		return DefaultLimit, nil
	}
	if n < 0 || n > MaxLimit {
		return 0, httpx.BadRequest("limit must be between 1 and %d, not %d", MaxLimit, n)
	}
	return n, nil
}

type envelope struct {
	List string          `json:"l"`
	Pos  json.RawMessage `json:"p"`
}

// Encode returns the cursor for position pos in the list named list.
func Encode(list string, pos any) string {
	p, err := json.Marshal(pos)
	if err != nil {
		// Positions are plain structs of strings and integers.
		panic("page: encode cursor: " + err.Error())
	}
	b, _ := json.Marshal(envelope{List: list, Pos: p})
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads cursor s of list into pos. Any cursor that this server did not
// hand out for this list is a 400 problem.
func Decode(list, s string, pos any) error {
	bad := httpx.BadRequest("cursor %q is not a cursor of this list; pass next_cursor from the previous page unchanged", abbreviate(s))
	if len(s) > maxCursorLen {
		return bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.List != list || len(env.Pos) == 0 {
		return bad
	}
	dec = json.NewDecoder(bytes.NewReader(env.Pos))
	dec.DisallowUnknownFields()
	if err := dec.Decode(pos); err != nil {
		return bad
	}
	return nil
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
