package jsondiff

import (
	"strings"
	"testing"
)

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := Decode([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func mustPaths(t *testing.T, ps ...string) []Path {
	var out []Path
	for _, s := range ps {
		p, err := ParsePath(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name   string
		a, b   string
		ignore []string
		noise  []string
		want   []string
	}{
		{"equal", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, nil, nil, nil},
		{"numbers by value", `{"p":12.5,"q":3,"r":1e2}`, `{"p":12.50,"q":3.0,"r":100}`, nil, nil, nil},
		{"changed value", `{"a":1}`, `{"a":2}`, nil, nil, []string{"$.a: 1 → 2"}},
		{"missing and extra members", `{"a":1,"b":2}`, `{"b":2,"c":3}`, nil, nil, []string{"$.a: 1 → (absent)", "$.c: (absent) → 3"}},
		{"type change", `{"a":[1]}`, `{"a":{"x":1}}`, nil, nil, []string{`$.a: [1] → {"x":1}`}},
		{"array length", `[1,2,3]`, `[1,2]`, nil, nil, []string{"$[2]: 3 → (absent)"}},
		{"nested", `{"items":[{"id":1,"price":2}]}`, `{"items":[{"id":1,"price":3}]}`, nil, nil, []string{"$.items[0].price: 2 → 3"}},
		{"odd member names", `{"a b":1}`, `{"a b":2}`, nil, nil, []string{"$['a b']: 1 → 2"}},
		{"strings and nulls", `{"s":"x","n":null}`, `{"s":"y","n":false}`, nil, nil, []string{`$.n: null → false`, `$.s: "x" → "y"`}},
		{"ignore a member", `{"a":1,"t":"x"}`, `{"a":1,"t":"y"}`, []string{"$.t"}, nil, nil},
		{"ignore in every element", `{"items":[{"u":1,"v":1},{"u":2,"v":1}]}`, `{"items":[{"u":9,"v":1},{"u":8,"v":2}]}`, []string{"$.items[*].u"}, nil, []string{"$.items[1].v: 1 → 2"}},
		{"ignore at any depth", `{"a":{"b":{"ts":1}},"ts":2}`, `{"a":{"b":{"ts":3}},"ts":4}`, []string{"$..ts"}, nil, nil},
		{"ignore a subtree", `{"meta":{"x":1,"y":[1]}}`, `{"meta":{"x":2}}`, []string{"$.meta"}, nil, nil},
		{"ignore a missing member", `{"a":1}`, `{"a":1,"debug":true}`, []string{"$.debug"}, nil, nil},
		{"noise generalizes indexes", `{"l":[{"at":1},{"at":2}]}`, `{"l":[{"at":3},{"at":4}]}`, nil, []string{"$.l[*].at"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noise := map[string]bool{}
			for _, n := range tt.noise {
				noise[n] = true
			}
			got := Compare(mustDecode(t, tt.a), mustDecode(t, tt.b), Options{Ignore: mustPaths(t, tt.ignore...), Noise: noise})
			var lines []string
			for _, d := range got {
				lines = append(lines, d.String())
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCompareCapsDifferences(t *testing.T) {
	var a, b strings.Builder
	a.WriteString("[")
	b.WriteString("[")
	for i := range 120 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		a.WriteString("1")
		b.WriteString("2")
	}
	a.WriteString("]")
	b.WriteString("]")
	got := Compare(mustDecode(t, a.String()), mustDecode(t, b.String()), Options{})
	if len(got) != MaxDifferences+1 || got[MaxDifferences].Legacy != "70 more differences" {
		t.Fatalf("%d differences, last %+v", len(got), got[len(got)-1])
	}
}

func TestLocations(t *testing.T) {
	got := Locations(mustDecode(t, `{"id":1,"at":"x","l":[{"n":1},{"n":2}],"s":"a"}`), mustDecode(t, `{"id":1,"at":"y","l":[{"n":3},{"n":4}],"s":"b"}`), Options{Ignore: mustPaths(t, "$.s")})
	if strings.Join(got, ",") != "$.at,$.l[*].n" {
		t.Fatalf("got %v", got)
	}
}

func TestParsePath(t *testing.T) {
	for _, ok := range []string{"$", "$.a", "$.a.b", "$['a b']", `$["x"]`, "$.a[0]", "$.a[*].b", "$..b", "$.*", "$..[0]"} {
		if _, err := ParsePath(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a", "$.", "$[", "$[x]", "$[-1]", "$..", "$a"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestDecodeRejectsTrailingData(t *testing.T) {
	if _, err := Decode([]byte(`{"a":1} {"b":2}`)); err == nil {
		t.Fatal("two documents decoded as one")
	}
}

// TestCompareRedact hides secret members, by name or path, in the values
// of differences and inside rendered objects, while still finding the
// differences.
func TestCompareRedact(t *testing.T) {
	names := func(n string) bool { return n == "email" || n == "password" }
	tests := []struct {
		name  string
		a, b  string
		paths []string
		want  []string
	}{
		{"a secret member's values", `{"email":"a@x.io","n":1}`, `{"email":"b@x.io","n":1}`, nil, []string{"$.email: (redacted) → (redacted)"}},
		{"under a secret member", `{"password":{"v":"p1"}}`, `{"password":{"v":"p2"}}`, nil, []string{"$.password.v: (redacted) → (redacted)"}},
		{"inside a rendered object", `{"u":1}`, `{"u":{"email":"b@x.io","name":"Bo","l":[{"password":"p"}]}}`, nil,
			[]string{`$.u: 1 → {"email":"(redacted)","l":[{"password":"(redacted)"}],"name":"Bo"}`}},
		{"a missing secret member", `{}`, `{"email":"b@x.io"}`, nil, []string{"$.email: (absent) → (redacted)"}},
		{"a configured path at any depth", `{"a":{"phone":"1"},"b":2}`, `{"a":{"phone":"2"},"b":3}`, []string{"$..phone"}, []string{"$.a.phone: (redacted) → (redacted)", "$.b: 2 → 3"}},
		{"a configured subtree", `{"card":{"n":"1"}}`, `{"card":{"n":"2"}}`, []string{"$.card"}, []string{"$.card.n: (redacted) → (redacted)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(mustDecode(t, tt.a), mustDecode(t, tt.b), Options{Redact: &Redact{Names: names, Paths: mustPaths(t, tt.paths...)}})
			var lines []string
			for _, d := range got {
				lines = append(lines, d.String())
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
