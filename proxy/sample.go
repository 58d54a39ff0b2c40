package proxy

import (
	"strings"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
)

// FormatSample renders a mismatch as readable lines.
func FormatSample(s api.Sample) string {
	var b strings.Builder
	b.WriteString(s.Method + " " + s.URI + "  (request " + s.RequestID + ", " + s.Time.Format(time.RFC3339) + ")\n")
	for _, d := range s.Differences {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
