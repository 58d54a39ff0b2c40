package filestore_test

import (
	"testing"

	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/filestore"
	"github.com/stranglerkit/strangler/proxy/control/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) control.Store {
		s, err := filestore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
