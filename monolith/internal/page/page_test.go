package page_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/internal/page"
)

type pos struct {
	ID  int64  `json:"id"`
	Ref string `json:"ref,omitempty"`
}

func TestLimit(t *testing.T) {
	tests := []struct {
		in, want int
		bad      bool
	}{
		{in: 0, want: page.DefaultLimit},
		{in: 1, want: 1},
		{in: page.MaxLimit, want: page.MaxLimit},
		{in: page.MaxLimit + 1, bad: true},
		{in: -1, bad: true},
	}
	for _, tt := range tests {
		got, err := page.Limit(tt.in)
		if tt.bad {
			var p *httpx.Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
				t.Errorf("Limit(%d) error = %v, want a 400 problem", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Limit(%d) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	in := pos{ID: 42, Ref: "P-000042"}
	c := page.Encode("inventory.stock", in)
	var out pos
	if err := page.Decode("inventory.stock", c, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("Decode = %+v, want %+v", out, in)
	}
}

func TestDecodeRefusesForeignCursors(t *testing.T) {
	other := page.Encode("customers", pos{ID: 1})
	tests := []struct{ name, cursor string }{
		{"another list", other},
		{"not base64", "!!!"},
		{"base64 of junk", "aGVsbG8"},
		{"unknown position field", page.Encode("catalog.products", map[string]any{"id": 1, "x": 2})},
		{"wrong position type", page.Encode("catalog.products", map[string]any{"id": "one"})},
		{"too long", string(make([]byte, 600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pos
			err := page.Decode("catalog.products", tt.cursor, &p)
			var prob *httpx.Problem
			if !errors.As(err, &prob) || prob.Status != http.StatusBadRequest {
				t.Fatalf("Decode error = %v, want a 400 problem", err)
			}
		})
	}
}
