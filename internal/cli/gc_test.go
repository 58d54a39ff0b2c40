package cli

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC sets the garbage collector's defaults under each environment
// and reads back what the runtime then uses: the defaults where GOGC and
// GOMEMLIMIT are unset, the runtime's own setting (from the environment)
// where they are set.
func TestTuneGC(t *testing.T) {
	const prevPercent, prevLimit = 150, int64(3 << 30)
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantGOGC  int
		wantLimit int64
	}{
		{name: "defaults", env: nil, wantGOGC: defaultGOGC, wantLimit: defaultMemLimit},
		{name: "GOGC set", env: map[string]string{"GOGC": "100"}, wantGOGC: prevPercent, wantLimit: defaultMemLimit},
		{name: "GOMEMLIMIT set", env: map[string]string{"GOMEMLIMIT": "off"}, wantGOGC: defaultGOGC, wantLimit: prevLimit},
		{name: "both set", env: map[string]string{"GOGC": "off", "GOMEMLIMIT": "2GiB"}, wantGOGC: prevPercent, wantLimit: prevLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The runtime read the environment when the process started;
			// prevPercent and prevLimit stand for what it read.
			oldPercent := debug.SetGCPercent(prevPercent)
			oldLimit := debug.SetMemoryLimit(prevLimit)
			t.Cleanup(func() {
				debug.SetGCPercent(oldPercent)
				debug.SetMemoryLimit(oldLimit)
			})
			tuneGC(func(k string) string { return tc.env[k] })
			if got := debug.SetGCPercent(prevPercent); got != tc.wantGOGC {
				t.Errorf("GOGC = %d, want %d", got, tc.wantGOGC)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit = %d, want %d", got, tc.wantLimit)
			}
		})
	}
}
