package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}`,
		`{"Action":"run","Package":"p","Test":"TestPG/postgres"}`,
		`{"Action":"output","Package":"p","Test":"TestPG/postgres","Output":"    dbtest.go:111: postgres suite skipped: STRANGLER_TEST_POSTGRES_DSN is not set\n"}`,
		`{"Action":"output","Package":"p","Test":"TestPG/postgres","Output":"    --- SKIP: TestPG/postgres (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestPG/postgres"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: want 2, got 3\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0.2}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t0.3s\n"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out bytes.Buffer
	r := &report{out: &out, outputs: map[key][]string{}}
	if err := r.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if r.summary() {
		t.Fatal("summary reported success for a failed run")
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL: p TestB (0.20s)",
		"b_test.go:9: want 2, got 3",
		"SKIPPED: 1 tests did not run:",
		"postgres suite skipped: STRANGLER_TEST_POSTGRES_DSN is not set (1):",
		"p TestPG/postgres",
		"tests: 1 passed, 1 failed, 1 skipped",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestReportBuildFailure(t *testing.T) {
	var out bytes.Buffer
	r := &report{out: &out, outputs: map[key][]string{}}
	in := `{"ImportPath":"p [p.test]","Action":"build-output","Output":"./a.go:2:12: undefined: y\n"}
{"ImportPath":"p [p.test]","Action":"build-fail"}`
	if err := r.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if r.summary() {
		t.Fatal("a build failure passed")
	}
	if !strings.Contains(out.String(), "undefined: y") {
		t.Fatalf("build output not shown:\n%s", out.String())
	}
}
