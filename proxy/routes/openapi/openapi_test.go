package openapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/proxy/routes"
)

// describe renders modules as "module: METHODS pattern; ..." lines.
func describe(mods []routes.Module) string {
	var b strings.Builder
	for _, m := range mods {
		fmt.Fprintf(&b, "%s:", m.Name)
		for _, r := range m.Routes {
			fmt.Fprintf(&b, " %s %s %s;", r.ID, strings.Join(r.Methods, ","), r.Path)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestModules turns small specs into modules and checks that the table
// they make compiles.
func TestModules(t *testing.T) {
	tests := []struct {
		name  string
		spec  string
		want  string
		notes []string
	}{
		{
			name: "tags in the spec's order, untagged by first segment, base path from servers",
			spec: `openapi: 3.0.3
info: {title: t, version: "1"}
servers: [{url: "https://x.example/api/"}]
tags: [{name: Zoo Keepers}, {name: animals}]
paths:
  /animals/{animal.id}:
    get: {tags: [animals], responses: {"200": {description: ok}}}
  /keepers:
    post: {tags: [Zoo Keepers], responses: {"201": {description: ok}}}
  /status:
    get: {responses: {"200": {description: ok}}}
  /{any}:
    get: {responses: {"200": {description: ok}}}
`,
			want: "zoo-keepers: zoo-keepers.api-keepers POST /api/keepers;\n" +
				"animals: animals.api-animals-animal_id GET /api/animals/{animal_id};\n" +
				"root: root.api-any GET /api/{any};\n" +
				"status: status.api-status GET /api/status;\n",
		},
		{
			name: "a segment that mixes a parameter with text, a tag named default, same-shaped paths",
			spec: `swagger: "2.0"
info: {title: t, version: "1"}
paths:
  /files/{name}.json:
    get: {tags: [default], responses: {"200": {description: ok}}}
  /files/{id}:
    get: {tags: [default], responses: {"200": {description: ok}}}
    delete: {tags: [default], responses: {"204": {description: ok}}}
`,
			want: "default-api: default-api.files-id DELETE,GET /files/{id};\n",
			notes: []string{
				`path /files/{name}.json: segment "{name}.json" mixes a parameter with text`,
				"GET /files/{name}.json left out: the route /files/{id} already takes GET requests of the same shape",
			},
		},
		{
			name: "a server URL with variables gives no base path",
			spec: `openapi: 3.1.0
info: {title: t, version: "1"}
servers: [{url: "https://{region}.x.example/{version}", variables: {region: {default: eu}, version: {default: v1}}}]
paths:
  /a/{x}/{x2}:
    put: {tags: [a], responses: {"200": {description: ok}}}
`,
			want: "a: a.a-x-x2 PUT /a/{x}/{x2};\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.spec))
			if err != nil {
				t.Fatal(err)
			}
			res := Modules(doc)
			if got := describe(res.Modules); got != tt.want {
				t.Errorf("modules:\n%s\nwant:\n%s", got, tt.want)
			}
			if len(res.Notes) != len(tt.notes) {
				t.Errorf("notes %q, want %d", res.Notes, len(tt.notes))
			}
			for i, n := range tt.notes {
				if i < len(res.Notes) && !strings.Contains(res.Notes[i], n) {
					t.Errorf("note %d %q lacks %q", i, res.Notes[i], n)
				}
			}
			tbl, err := routes.Compile(res.Doc(), routes.Options{Backends: map[string]routes.Backend{"legacy": {URLs: []string{"http://127.0.0.1:1"}}}})
			if err != nil {
				t.Fatalf("the table does not compile: %v", err)
			}
			if !tbl.CatchAll() || tbl.Modules[len(tbl.Modules)-1].Name != "default" {
				t.Errorf("the catch-all module default is not last")
			}
		})
	}
}

// TestParseErrors: what is not a spec is a *SpecError with its cause.
func TestParseErrors(t *testing.T) {
	tests := []struct{ name, spec, want string }{
		{"not YAML", "openapi: [", "yaml"},
		{"no version", "info: {title: t}\n", `neither an "openapi" nor a "swagger"`},
		{"OpenAPI 2", "openapi: 2.0.0\n", `openapi version "2.0.0" is not 3.x`},
		{"Swagger 1.2", "swagger: '1.2'\n", `swagger version "1.2" is not 2.0`},
		{"no paths", "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n", "no paths"},
		{"wrong type", "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {/a: {get: {responses: 7}}}\n", "responses"},
		{"broken reference", "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {/a: {$ref: '#/nope'}}\n", "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.spec))
			var se *SpecError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a *SpecError with %q", err, tt.want)
			}
		})
	}
}

// TestRead reads specs from files and URLs, within the size limit.
func TestRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/spec.yaml":
			w.Write([]byte("openapi: 3.0.0\n"))
		case "/huge":
			w.Write(make([]byte, MaxSpecSize+1))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(file, []byte(`{"swagger": "2.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ src, want, err string }{
		{srv.URL + "/spec.yaml", "openapi: 3.0.0\n", ""},
		{file, `{"swagger": "2.0"}`, ""},
		{srv.URL + "/huge", "", "larger than"},
		{srv.URL + "/missing", "", "404"},
		{filepath.Join(t.TempDir(), "none"), "", "no such file"},
	}
	for _, tt := range tests {
		b, err := Read(context.Background(), tt.src)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Read(%s): %v, want an error with %q", tt.src, err, tt.err)
			}
			continue
		}
		if err != nil || string(b) != tt.want {
			t.Errorf("Read(%s) = %q, %v", tt.src, b, err)
		}
	}
}
