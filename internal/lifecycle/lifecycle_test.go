package lifecycle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/internal/lifecycle"
)

// TestGuard checks the orders of Run and Close that the guard refuses, and
// that Close releases once and repeats its result.
func TestGuard(t *testing.T) {
	tests := []struct {
		name  string
		steps []string
		want  string // the last step's Run error, if any
	}{
		{"run", []string{"run"}, ""},
		{"run twice", []string{"run", "run"}, "svc: Run called twice"},
		{"run after close", []string{"close", "run"}, "svc: Run after Close"},
		{"run, close, run", []string{"run", "close", "run"}, "svc: Run called twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g lifecycle.Guard
			var err error
			for _, s := range tt.steps {
				if s == "run" {
					err = g.Run("svc")
				} else {
					_ = g.Close(func() error { return nil })
				}
			}
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Run = %v, want %q", err, tt.want)
			}
		})
	}
	var g lifecycle.Guard
	released := 0
	boom := errors.New("boom")
	for range 3 {
		if err := g.Close(func() error { released++; return boom }); !errors.Is(err, boom) {
			t.Fatalf("Close = %v, want %v", err, boom)
		}
	}
	if released != 1 {
		t.Fatalf("released %d times, want once", released)
	}
}
