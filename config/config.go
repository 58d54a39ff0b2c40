// Package config is Strangler's one typed configuration. It flows one way:
// each component's defaults, then a YAML file, then STRANGLER_* environment
// variables, then command-line flags, each layer overriding the one before.
// Load validates the result whole and lists every error at once; a config
// that fails is never half-applied.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/broker"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/internal/logging"
	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/control"
)

// EnvPrefix starts every environment variable the config reads. A setting's
// variable is its YAML path in upper case with dots as underscores:
// proxy.admin_addr is STRANGLER_PROXY_ADMIN_ADDR.
const EnvPrefix = "STRANGLER_"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = "STRANGLER_CONFIG"

// Config is the whole configuration of a Strangler process. Each component
// reads only its own section: the toolkit's are its fields, and a program's
// own (such as the reference shop's monolith and services) are registered
// with Register and read with their Key.
type Config struct {
	// DataDir holds everything the embedded defaults write: SQLite files,
	// the broker's log, the admin token and the persisted route table. It
	// is created 0700, and the SQLite files and the broker's log in it are
	// 0600: they hold customer data. If empty, "./.strangler" is used.
	DataDir string `yaml:"data_dir"`
	// Log configures the process's structured log.
	Log logging.Config `yaml:"log"`
	// Proxy configures the routing proxy and its admin API.
	Proxy proxy.Config `yaml:"proxy"`
	// Control picks the store of the proxy's control state: embedded
	// for one proxy, or shared by replicas.
	Control control.StoreConfig `yaml:"control"`
	// Kafka says where change events go: the embedded broker or a cluster.
	Kafka changefeed.KafkaConfig `yaml:"kafka"`
	// Broker configures the embedded Kafka-protocol broker.
	Broker broker.Config `yaml:"broker"`
	// Relay configures the outbox relay.
	Relay relay.Config `yaml:"relay"`
	// Backfill lists the named backfill jobs.
	Backfill backfill.Config `yaml:"backfill"`
	// Verify lists the named verify checks.
	Verify verify.Config `yaml:"verify"`
	// Phases lists the extractions that `strangler phase` drives and
	// `strangler status` reports.
	Phases phase.Config `yaml:"phases"`

	// extra holds the registered sections by name, each a pointer to its
	// registered type.
	extra map[string]Section
}

// namedSection is a section with its YAML key, for validation's messages.
type namedSection struct {
	name string
	s    Section
}

// sections lists the component sections, core and registered, in the
// printed config's order, so that defaults and validation reach every one
// of them.
func (c *Config) sections() []namedSection {
	core := map[string]Section{
		"proxy": &c.Proxy, "control": &c.Control, "kafka": &c.Kafka, "broker": &c.Broker, "relay": &c.Relay,
		"backfill": &c.Backfill, "verify": &c.Verify, "phases": &c.Phases,
	}
	t := reflect.TypeFor[Config]()
	var out []namedSection
	_, slots := layout()
	for _, sl := range slots {
		if sl.core < 0 {
			out = append(out, namedSection{sl.ext, c.extension(sl.ext)})
		} else if name := yamlName(t.Field(sl.core)); core[name] != nil {
			out = append(out, namedSection{name, core[name]})
		}
	}
	return out
}

// LoadOptions says where Load finds each layer.
type LoadOptions struct {
	// File is the YAML file; if empty, $STRANGLER_CONFIG, else none.
	File string
	// LookupEnv reads the environment; if nil, os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Overrides maps YAML paths to values, from flags that were set.
	Overrides map[string]string
	// Base returns the config the layers start from, for a program that
	// ships defaults of its own (such as the shop's backfill jobs); the
	// file, the environment and the flags override it. If nil, the zero
	// Config.
	Base func() *Config
}

// Load builds the effective config from the layers and validates it.
func Load(opt LoadOptions) (*Config, error) {
	lookup := opt.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	file := opt.File
	if file == "" {
		file, _ = lookup(EnvConfigFile)
	}
	cfg := &Config{}
	if opt.Base != nil {
		cfg = opt.Base()
	}
	if file != "" {
		if err := loadFile(cfg, file); err != nil {
			return nil, err
		}
	}
	var errs []error
	if err := applyEnv(cfg, lookup); err != nil {
		errs = append(errs, err)
	}
	if err := applyOverrides(cfg, opt.Overrides); err != nil {
		errs = append(errs, err)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, &Error{Problems: flatten(errors.Join(errs...))}
	}
	return cfg, nil
}

func loadFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config %q: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	v := cfg.view()
	defer cfg.store(v)
	// An empty file decodes to io.EOF and leaves every setting to the
	// other layers.
	if err := dec.Decode(v.Interface()); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// The file decodes into the view, whose type the messages
			// would spell out in full: they name Config, as the user
			// knows it.
			view, name := v.Elem().Type().String(), reflect.TypeFor[Config]().String()
			problems := make([]string, len(te.Errors))
			for i, p := range te.Errors {
				problems[i] = strings.ReplaceAll(p, view, name)
			}
			return &Error{File: path, Problems: problems}
		}
		return &Error{File: path, Problems: []string{err.Error()}}
	}
	return nil
}

// SetDefaults fills every empty field with its default.
func (c *Config) SetDefaults() {
	if c.DataDir == "" {
		c.DataDir = ".strangler"
	}
	c.DataDir = filepath.Clean(c.DataDir)
	c.Log.SetDefaults()
	for _, s := range c.sections() {
		s.s.SetDefaults(c.DataDir)
	}
}

// Validate checks every section and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, prefix("log", err)...)
	}
	for _, s := range c.sections() {
		if err := s.s.Validate(); err != nil {
			errs = append(errs, prefix(s.name, err)...)
		}
	}
	return errors.Join(errs...)
}

func prefix(name string, err error) []error {
	var out []error
	for _, p := range flatten(err) {
		out = append(out, errors.New(name+"."+p))
	}
	return out
}

// Prefix puts name and a dot before each problem that err joins, as a
// section's Validate does for a part of it: Prefix("inventory", err) turns
// "addr: …" into "inventory.addr: …".
func Prefix(name string, err error) error { return errors.Join(prefix(name, err)...) }

// flatten lists the leaves of a tree of joined errors.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// Error is an invalid config, with every problem found.
type Error struct {
	// File is the config file, when the problems are in it.
	File string
	// Problems lists what is wrong, one setting each.
	Problems []string
}

func (e *Error) Error() string {
	where := "invalid config"
	if e.File != "" {
		where += " " + e.File
	}
	return where + ": " + strings.Join(e.Problems, "; ")
}
