package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/eventsource"
)

// tally counts each stream's events in cli_tally.
type tally struct{}

func (tally) Name() string     { return "tally" }
func (tally) Tables() []string { return []string{"cli_tally"} }
func (tally) Apply(ctx context.Context, tx *gorm.DB, ev eventsource.Event) error {
	return tx.Exec("INSERT INTO cli_tally (stream, events) VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET events = cli_tally.events + 1", ev.AggregateID).Error
}

func readTally(t *testing.T, gdb *gorm.DB) string {
	t.Helper()
	var rows []struct {
		Stream string
		Events int
	}
	changefeedtest.Must(t, gdb.Raw("SELECT stream, events FROM cli_tally ORDER BY stream").Scan(&rows).Error)
	return fmt.Sprint(rows)
}

// TestProjectionsCommand lists and rebuilds a registered set of
// projections through the command line, and checks the output, that the
// rebuilt table equals the projected one, and the usage errors.
func TestProjectionsCommand(t *testing.T) {
	dir := isolate(t)
	dsn := "sqlite:" + filepath.Join(dir, "es.db")
	gdb := changefeedtest.Open(t, dsn, eventsource.Migrations())
	changefeedtest.Must(t, gdb.Exec("CREATE TABLE cli_tally (stream TEXT PRIMARY KEY, events INTEGER NOT NULL)").Error)
	s, err := eventsource.NewStore(gdb, eventsource.Options{AggregateType: "thing"})
	changefeedtest.Must(t, err)
	ctx := context.Background()
	for i := range 9 {
		ev, err := eventsource.NewEvent("thing.happened", map[string]int{"n": i})
		changefeedtest.Must(t, err)
		_, err = s.Append(ctx, fmt.Sprintf("t-%d", i%3), int64(i/3), ev)
		changefeedtest.Must(t, err)
	}
	build := func(gdb *gorm.DB) (*eventsource.Runner, error) {
		s, err := eventsource.NewStore(gdb, eventsource.Options{AggregateType: "thing"})
		if err != nil {
			return nil, err
		}
		return eventsource.NewRunner(s, eventsource.RunnerConfig{}, eventsource.RunnerOptions{}, tally{})
	}
	RegisterProjections("things", func(*config.Config) string { return dsn }, build)
	t.Cleanup(func() { delete(projectionSets, "things") })

	out, errOut, code := runCLI(t, "projections", "list", "things")
	if code != 0 || !strings.Contains(out, "tally") || !strings.Contains(out, "0         9     9") {
		t.Fatalf("list before projecting: exit %d\n%s%s", code, out, errOut)
	}
	r, err := build(gdb)
	changefeedtest.Must(t, err)
	changefeedtest.Must(t, r.CatchUp(ctx))
	projected := readTally(t, gdb)
	if projected != "[{t-0 3} {t-1 3} {t-2 3}]" {
		t.Fatalf("projected %s", projected)
	}
	changefeedtest.Must(t, gdb.Exec("UPDATE cli_tally SET events = 100").Error) // a read model gone wrong

	out, errOut, code = runCLI(t, "projections", "rebuild", "things", "-o", "json")
	if code != 0 {
		t.Fatalf("rebuild: exit %d\n%s%s", code, out, errOut)
	}
	var st struct{ Projections []eventsource.Status }
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Projections) != 1 || st.Projections[0].Position != 9 || st.Projections[0].LagEvents != 0 {
		t.Errorf("rebuild -o json = %s, %v", out, err)
	}
	if got := readTally(t, gdb); got != projected {
		t.Errorf("after rebuild %s, projected %s", got, projected)
	}

	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"projections", "rebuild", "nope"}, 2, `unknown projections "nope"; known: `},
		{[]string{"projections", "rebuild", "things", "--projection", "nope"}, 2, `unknown projection "nope"`},
		{[]string{"projections", "list", "things", "-o", "yaml"}, 2, "--output: want text or json"},
		{[]string{"projections", "list", "things", "--dsn", "mysql://x"}, 2, "--dsn"},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}
