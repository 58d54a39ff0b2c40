// Command testreport reads `go test -json` on stdin and prints what a person
// needs from a long run: one line per package, the full output of every
// failed test, and a closing list of every skipped test with its reason, so
// that a suite that did not run (Postgres missing, say) is never mistaken for
// one that passed. It exits 1 if anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type key struct{ pkg, test string }

type report struct {
	out      io.Writer
	outputs  map[key][]string
	skipped  []skip
	failed   []key
	passed   int
	pkgFail  int
	building bool
}

type skip struct {
	key
	reason string
}

func main() {
	r := &report{out: os.Stdout, outputs: map[key][]string{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	if !r.summary() {
		os.Exit(1)
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Build errors and other non-JSON lines go straight through.
			fmt.Fprintln(r.out, string(line))
			if len(line) > 0 {
				r.building = true
			}
			continue
		}
		r.handle(ev)
	}
	return sc.Err()
}

func (r *report) handle(ev event) {
	k := key{ev.Package, ev.Test}
	switch ev.Action {
	case "build-output":
		fmt.Fprint(r.out, ev.Output)
	case "build-fail":
		r.building = true
	case "output":
		if ev.Test == "" {
			if s := strings.TrimRight(ev.Output, "\n"); s != "PASS" && s != "FAIL" && !strings.HasPrefix(s, "=== ") && s != "" {
				if strings.HasPrefix(s, "ok ") || strings.HasPrefix(s, "FAIL\t") || strings.HasPrefix(s, "?") || strings.HasPrefix(s, "--- FAIL") || strings.HasPrefix(s, "panic") {
					fmt.Fprintln(r.out, s)
				}
			}
			return
		}
		r.outputs[k] = append(r.outputs[k], ev.Output)
	case "pass":
		if ev.Test != "" {
			r.passed++
			delete(r.outputs, k)
		}
	case "skip":
		if ev.Test != "" {
			r.skipped = append(r.skipped, skip{k, skipReason(r.outputs[k])})
			delete(r.outputs, k)
		}
	case "fail":
		if ev.Test == "" {
			r.pkgFail++
			return
		}
		r.failed = append(r.failed, k)
		fmt.Fprintf(r.out, "--- FAIL: %s %s (%.2fs)\n", ev.Package, ev.Test, ev.Elapsed)
		for _, o := range r.outputs[k] {
			if !strings.HasPrefix(o, "=== ") {
				fmt.Fprint(r.out, "    "+o)
			}
		}
		delete(r.outputs, k)
	}
}

// skipReason finds the message a test gave t.Skip.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		s := strings.TrimSpace(lines[i])
		if s == "" || strings.HasPrefix(s, "--- SKIP") || strings.HasPrefix(s, "=== ") {
			continue
		}
		// Drop the "file.go:12: " prefix testing adds.
		if i := strings.Index(s, ": "); i > 0 && strings.Contains(s[:i], ".go:") {
			s = s[i+2:]
		}
		return s
	}
	return "(no reason given)"
}

func (r *report) summary() bool {
	fmt.Fprintln(r.out)
	if len(r.skipped) > 0 {
		// Subtests skip for the same reason as their siblings; group by reason.
		byReason := map[string][]string{}
		for _, s := range r.skipped {
			byReason[s.reason] = append(byReason[s.reason], strings.TrimPrefix(s.pkg, "github.com/stranglerkit/strangler/")+" "+s.test)
		}
		reasons := make([]string, 0, len(byReason))
		for k := range byReason {
			reasons = append(reasons, k)
		}
		sort.Strings(reasons)
		fmt.Fprintf(r.out, "SKIPPED: %d tests did not run:\n", len(r.skipped))
		for _, reason := range reasons {
			tests := byReason[reason]
			sort.Strings(tests)
			fmt.Fprintf(r.out, "  %s (%d):\n", reason, len(tests))
			for _, t := range tests {
				fmt.Fprintf(r.out, "    %s\n", t)
			}
		}
	}
	fmt.Fprintf(r.out, "tests: %d passed, %d failed, %d skipped\n", r.passed, len(r.failed), len(r.skipped))
	ok := len(r.failed) == 0 && r.pkgFail == 0 && !r.building
	if !ok {
		fmt.Fprintln(r.out, "FAIL")
	}
	return ok
}
