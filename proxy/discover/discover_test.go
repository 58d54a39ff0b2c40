package discover_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/internal/goldentest"
	"github.com/stranglerkit/strangler/proxy/discover"
	"github.com/stranglerkit/strangler/proxy/routes"
)

func TestAppendTemplate(t *testing.T) {
	long := strings.Repeat("x", discover.MaxLiteral+1)
	deep := strings.Repeat("/a", discover.MaxSegments+3)
	for _, tc := range []struct{ path, want string }{
		{"/", "/"},
		{"", "/"},
		{"/api/orders", "/api/orders"},
		{"/api/orders/", "/api/orders/"},
		{"/api/orders/42", "/api/orders/{id}"},
		{"/api/orders/42/lines/7", "/api/orders/{id}/lines/{id}"},
		{"/u/550e8400-e29b-41d4-a716-446655440000", "/u/{uuid}"},
		{"/u/550E8400-E29B-41D4-A716-446655440000/x", "/u/{uuid}/x"},
		{"/blob/9f86d081884c7d65", "/blob/{hash}"},
		{"/blob/deadbeefdeadbeefdeadbeef", "/blob/deadbeefdeadbeefdeadbeef"}, // no digit: a word
		{"/reports/2026-01-31", "/reports/{date}"},
		{"/api/articles/how-to-x", "/api/articles/{slug}"},
		{"/api/add-item", "/api/add-item"},
		{"/api/articles/How-To-X", "/api/articles/How-To-X"},
		{"/t/abcdefghijklmnopqrs1", "/t/{token}"},
		{"/t/abcdefghijklmnopqrst", "/t/abcdefghijklmnopqrst"},
		{"/x/" + long, "/x/{value}"},
		{deep, strings.Repeat("/a", discover.MaxSegments) + "/{rest}"},
	} {
		got := string(discover.AppendTemplate(nil, []byte(tc.path)))
		if got != tc.want {
			t.Errorf("AppendTemplate(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestAppendTemplateBounded feeds paths built to be long: every template
// stays within MaxTemplateLen and the "/{rest}" that ends a cut one.
func TestAppendTemplateBounded(t *testing.T) {
	seg := strings.Repeat("y", discover.MaxLiteral)
	for _, n := range []int{1, 5, 6, 7, 11, 40} {
		path := strings.Repeat("/"+seg, n)
		got := discover.AppendTemplate(nil, []byte(path))
		if len(got) > discover.MaxTemplateLen+len("/{rest}") {
			t.Errorf("%d segments of %d bytes: template of %d bytes", n, len(seg), len(got))
		}
		if _, err := routes.ParsePattern(string(got), false); err != nil {
			t.Errorf("%d segments: template %q is not a pattern: %v", n, got, err)
		}
	}
}

func TestAppendTemplateDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 2*discover.MaxTemplateLen)
	path := []byte("/api/articles/how-to-x/comments/42")
	if n := testing.AllocsPerRun(100, func() { buf = discover.AppendTemplate(buf[:0], path) }); n != 0 {
		t.Fatalf("AppendTemplate allocates %v times a call", n)
	}
}

func TestMerge(t *testing.T) {
	many := func(prefix string, n int) []discover.Sample {
		var out []discover.Sample
		for i := 0; i < n; i++ {
			out = append(out, discover.Sample{Template: prefix + "/" + string(rune('a'+i)) + "x", Count: 1, Methods: []string{"GET"}})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []discover.Sample
		opt     discover.Options
		want    string
	}{
		{"literals under the threshold stay", many("/api/tags", 3), discover.Options{},
			"/api/tags/ax 1 GET; /api/tags/bx 1 GET; /api/tags/cx 1 GET"},
		{"literals over the threshold merge", many("/api/tags", 9), discover.Options{},
			"/api/tags/{name} 9 GET"},
		{"threshold option", many("/api/tags", 3), discover.Options{Threshold: 2},
			"/api/tags/{name} 3 GET"},
		{"literals join a param at their position", append(many("/api/tags", 9), discover.Sample{Template: "/api/tags/{id}", Count: 20, Methods: []string{"DELETE"}}), discover.Options{},
			"/api/tags/{id} 29 GET,DELETE"},
		{"subtrees merge", []discover.Sample{
			{Template: "/a/{id}/b/{id}", Count: 2, Methods: []string{"POST"}},
			{Template: "/a/{id}", Count: 1, Methods: []string{"GET"}},
		}, discover.Options{}, "/a/{id} 1 GET; /a/{id}/b/{id2} 2 POST"},
		{"min count", []discover.Sample{{Template: "/a", Count: 1}, {Template: "/b", Count: 5, Methods: []string{"GET"}}}, discover.Options{MinCount: 2},
			"/b 5 GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parts []string
			for _, tm := range discover.Merge(tc.samples, tc.opt) {
				parts = append(parts, tm.Path+" "+strconv.FormatInt(tm.Count, 10)+" "+strings.Join(tm.Methods, ","))
			}
			if got := strings.Join(parts, "; "); got != tc.want {
				t.Errorf("Merge = %s\nwant    %s", got, tc.want)
			}
		})
	}
}

// TestFragmentGolden turns each testdata/*.txt traffic (lines of method,
// count and path) into templates, through AppendTemplate as the proxy
// counts them, merges them and writes the routes-file fragment, which must
// match the golden file and compile as a route table.
func TestFragmentGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			doc := discover.Fragment(discover.Group(discover.Merge(readTraffic(t, f), discover.Options{})))
			b, err := doc.YAML()
			if err != nil {
				t.Fatal(err)
			}
			goldentest.Check(t, strings.TrimSuffix(f, ".txt")+".golden.yaml", string(b))
			parsed, err := routes.Parse(b)
			if err != nil {
				t.Fatalf("the fragment does not parse: %v", err)
			}
			if _, err := routes.Compile(parsed, routes.Options{Backends: map[string]routes.Backend{"legacy": {URLs: []string{"http://127.0.0.1:9001"}}}}); err != nil {
				t.Fatalf("the fragment does not compile: %v", err)
			}
		})
	}
}

func readTraffic(t *testing.T, path string) []discover.Sample {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []discover.Sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if len(fields) != 3 || err != nil {
			t.Fatalf("%s: bad line %q", path, line)
		}
		tmpl := string(discover.AppendTemplate(nil, []byte(fields[2])))
		out = append(out, discover.Sample{Template: tmpl, Count: n, Methods: []string{fields[0]}})
	}
	return out
}
