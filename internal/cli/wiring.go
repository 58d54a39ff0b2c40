package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Program is what a program built on the toolkit, such as the reference
// shop, tells the toolkit's commands about itself. Its commands and the
// components it adds to `strangler up` register with RegisterCommand,
// RegisterUp and RegisterMigrations; its config sections with
// config.Register. The zero Program is the bare toolkit.
type Program struct {
	// Defaults returns the config the layers start from, such as a
	// program's extraction plans, backfill jobs and verify checks. If nil,
	// the zero Config.
	Defaults func() *config.Config
	// Resolve, if not nil, fills what the defaults can only know once the
	// config is loaded.
	Resolve func(cfg *config.Config)
	// UpRoutes returns the route table the proxy starts on in
	// `strangler up`. If nil, up's proxy starts as `strangler proxy` does.
	UpRoutes func() (*routes.Doc, error)
	// LegacyDSN returns the legacy system's database, which the relay,
	// backfill and verify use when their own DSN is empty. If nil, they
	// need their own.
	LegacyDSN func(cfg *config.Config) string
	// MigrateTarget is the target that `strangler migrate` takes when none
	// is named (RegisterMigrations). If empty, the only one registered.
	MigrateTarget string
}

// program is the Program that SetProgram set.
var program Program

// SetProgram tells the toolkit's commands about the program they run in.
// It is called once, from init or main, before Main.
func SetProgram(p Program) { program = p }

// legacyDSN is the legacy system's database, or "" if the program names
// none.
func legacyDSN(cfg *config.Config) string {
	if program.LegacyDSN == nil {
		return ""
	}
	return program.LegacyDSN(cfg)
}

// databaseOr returns dsn, else the legacy system's database, else an
// error that says which setting names one.
func databaseOr(cfg *config.Config, dsn, setting string) (string, error) {
	if dsn == "" {
		dsn = legacyDSN(cfg)
	}
	if dsn == "" {
		return "", fmt.Errorf("no database: set %s", setting)
	}
	return dsn, nil
}

// RegisterProjections adds a set of read models that `strangler
// projections list|rebuild NAME` work on: dsn returns the database of
// their event store in the loaded config, and build returns the runner of
// the set's projections on it, which the command closes.
func RegisterProjections(name string, dsn func(cfg *config.Config) string, build func(gdb *gorm.DB) (*eventsource.Runner, error)) {
	projectionSets[name] = projectionSet{dsn: dsn, build: build}
}

// backfillMaps and verifyRows hold the mappings that programs give their
// backfill jobs and verify checks by name (RegisterBackfillMap,
// RegisterVerifyRow).
var (
	backfillMaps = map[string]func(gdb *gorm.DB) func(backfill.Row) (any, error){}
	verifyRows   = map[string]func(src *gorm.DB) func(verify.Row) (verify.Row, error){}
)

// RegisterBackfillMap gives the backfill job named job (backfill.jobs) a
// payload mapping that a config cannot express, such as a row together
// with its rows in a child table: build gets the job's database and
// returns the job's backfill.Options.Map. `strangler backfill` and the
// sync phase use it whenever they run the job.
func RegisterBackfillMap(job string, build func(gdb *gorm.DB) func(backfill.Row) (any, error)) {
	backfillMaps[job] = build
}

// RegisterVerifyRow gives the verify check named check (verify.checks) a
// source row mapping (verify.Mapping.Row) that a config cannot express,
// such as a code translated or a child table's rows folded in: build gets
// the check's source database. `strangler verify` uses it whenever it
// runs the check.
func RegisterVerifyRow(check string, build func(src *gorm.DB) func(verify.Row) (verify.Row, error)) {
	verifyRows[check] = build
}

// RegisterCommand adds a top-level command, built for each run of Main.
func RegisterCommand(f func(*App) *cobra.Command) { register(f) }

// extensions maps a command's name to what programs add to it.
var extensions = map[string][]func(*App, *cobra.Command){}

// Extend adds to the top-level command name once it is built, such as
// flags that bind a program's settings to up (App.BindBool).
func Extend(name string, f func(*App, *cobra.Command)) {
	extensions[name] = append(extensions[name], f)
}
