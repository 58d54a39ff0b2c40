package changefeedtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// EnvRequireKcat makes tests that use kcat fail, not skip, when kcat is
// missing. CI sets it, so that the third-party client check cannot be
// skipped silently.
const EnvRequireKcat = "STRANGLER_REQUIRE_KCAT"

// Kcat returns the path of kcat (librdkafka's command-line client). Without
// it the test is skipped, or fails when STRANGLER_REQUIRE_KCAT=1.
func Kcat(t testing.TB) string {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv(EnvRequireKcat) == "1" {
			t.Fatalf("kcat required (%s=1) but not installed: apt-get install -y kcat", EnvRequireKcat)
		}
		t.Skipf("kcat test skipped: kcat is not installed (apt-get install -y kcat)")
	}
	return kcat
}

// RunKcat runs kcat with args and returns its standard output, failing the
// test with its standard error if it fails.
func RunKcat(ctx context.Context, t testing.TB, kcat string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v: %s", args, err, stderr.String())
	}
	return out
}

// KcatTopics returns the partition count of every topic that `kcat -L -J`
// lists.
func KcatTopics(t testing.TB, out []byte) map[string]int {
	t.Helper()
	var md struct {
		Topics []struct {
			Topic      string            `json:"topic"`
			Partitions []json.RawMessage `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L output %s: %v", out, err)
	}
	topics := map[string]int{}
	for _, tp := range md.Topics {
		topics[tp.Topic] = len(tp.Partitions)
	}
	return topics
}

// KcatRecord is one message as `kcat -C -J` prints it.
type KcatRecord struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Payload   string `json:"payload"`
	// Headers alternate names and values.
	Headers []string `json:"headers"`
}

// Header returns the value of header name.
func (r KcatRecord) Header(name string) string {
	for i := 0; i+1 < len(r.Headers); i += 2 {
		if r.Headers[i] == name {
			return r.Headers[i+1]
		}
	}
	return ""
}

// KcatRecords parses the output of `kcat -C -J`, one record a line.
func KcatRecords(t testing.TB, out []byte) []KcatRecord {
	t.Helper()
	var recs []KcatRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var rec KcatRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("kcat output %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	return recs
}
