package errs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stranglerkit/strangler/monolith/internal/errs"
)

func TestNew(t *testing.T) {
	sentinel := errors.New("insufficient stock")
	err := errs.New(sentinel, "cannot reserve %d of %s", 3, "P-000042")
	if err.Error() != "cannot reserve 3 of P-000042" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, sentinel) || !errors.Is(fmt.Errorf("place order: %w", err), sentinel) {
		t.Error("the error does not match its sentinel")
	}
	if errors.Is(err, errors.New("insufficient stock")) {
		t.Error("the error matches another sentinel with the same text")
	}
}
