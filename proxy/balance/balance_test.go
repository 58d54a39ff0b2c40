package balance_test

import (
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/proxy/balance"
)

// fakeList is a set of instances with fixed health and load.
type fakeList struct {
	usable   []bool
	inflight []int64
}

func (l *fakeList) Len() int                   { return len(l.usable) }
func (l *fakeList) Usable(i int, _ int64) bool { return l.usable[i] }
func (l *fakeList) InFlight(i int) int64       { return l.inflight[i] }
func newList(usable ...bool) *fakeList {
	return &fakeList{usable: usable, inflight: make([]int64, len(usable))}
}
func (l *fakeList) load(n ...int64) *fakeList { copy(l.inflight, n); return l }

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		list   *fakeList
		skip   int
		// want is the set of indexes a pick may return over many picks.
		want map[int]bool
	}{
		{"round robin visits every usable one", "round_robin", newList(true, true, true), -1, map[int]bool{0: true, 1: true, 2: true}},
		{"round robin skips the unusable", "round_robin", newList(true, false, true), -1, map[int]bool{0: true, 2: true}},
		{"round robin avoids skip", "round_robin", newList(true, true, true), 1, map[int]bool{0: true, 2: true}},
		{"round robin with none usable", "round_robin", newList(false, false), -1, map[int]bool{-1: true}},
		{"round robin whose only usable one is skipped", "round_robin", newList(false, true), 1, map[int]bool{-1: true}},
		{"least requests takes the idle one", "least_requests", newList(true, true).load(5, 0), -1, map[int]bool{1: true}},
		{"least requests of three never the busiest", "least_requests", newList(true, true, true).load(9, 1, 2), -1, map[int]bool{1: true, 2: true}},
		{"least requests skips the unusable", "least_requests", newList(false, true, false, true).load(0, 7, 0, 3), -1, map[int]bool{1: true, 3: true}},
		{"least requests avoids skip", "least_requests", newList(true, true, true).load(0, 5, 5), 0, map[int]bool{1: true, 2: true}},
		{"least requests of one skipped", "least_requests", newList(true), 0, map[int]bool{-1: true}},
		{"least requests with none usable", "least_requests", newList(false, false, false), -1, map[int]bool{-1: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := balance.New(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for i := 0; i < 200; i++ {
				seen[sel.Select(tc.list, tc.skip, 0)] = true
			}
			for k := range seen {
				if !tc.want[k] {
					t.Errorf("picked %d, want one of %v", k, tc.want)
				}
			}
			if tc.policy == "round_robin" && len(seen) != len(tc.want) {
				t.Errorf("round robin picked %v in 200 turns, want all of %v", seen, tc.want)
			}
		})
	}
}

func TestNewDefaultAndUnknown(t *testing.T) {
	if sel, err := balance.New(""); err != nil {
		t.Fatal(err)
	} else if _, ok := sel.(*balance.RoundRobin); !ok {
		t.Fatalf("the default is %T, want *RoundRobin", sel)
	}
	err := balance.Check("random")
	if err == nil || !strings.Contains(err.Error(), `want round_robin or least_requests, not "random"`) {
		t.Fatalf("Check(random) = %v", err)
	}
}

// first always takes the first usable instance.
type first struct{}

func (first) Select(list balance.Instances, skip int, now int64) int {
	for i := 0; i < list.Len(); i++ {
		if i != skip && list.Usable(i, now) {
			return i
		}
	}
	return -1
}

func TestRegister(t *testing.T) {
	balance.Register("test_first", func() balance.Selector { return first{} })
	if err := balance.Check("test_first"); err != nil {
		t.Fatal(err)
	}
	if got := balance.Names(); got[0] != balance.Default || !contains(got, "test_first") {
		t.Fatalf("Names() = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second policy of one name was accepted")
		}
	}()
	balance.Register("test_first", func() balance.Selector { return first{} })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestSelectDoesNotAllocate(t *testing.T) {
	list := newList(true, false, true, true).load(3, 0, 1, 2)
	for _, name := range []string{"round_robin", "least_requests"} {
		sel, err := balance.New(name)
		if err != nil {
			t.Fatal(err)
		}
		var l balance.Instances = list
		if n := testing.AllocsPerRun(1000, func() { sel.Select(l, 2, 0) }); n != 0 {
			t.Errorf("%s allocates %v times a pick", name, n)
		}
	}
}
