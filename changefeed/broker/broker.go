// Package broker runs the embedded Kafka-protocol broker: a single-node
// kfake cluster (github.com/twmb/franz-go/pkg/kfake) that keeps its log
// under a data directory, so that events survive a restart. It serves any
// Kafka client: Strangler's relay and consumers (kafka-go), kcat, franz-go.
// It is for development, demos and tests; in production kafka.brokers names
// a real cluster and this broker is not started.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycle"
	"github.com/stranglerkit/strangler/internal/private"
)

// Config is the "broker" section of the config.
type Config struct {
	// Addr is where the broker listens. If empty, "127.0.0.1:9092" is used.
	// Use port 0 for a free port (tests).
	Addr string `yaml:"addr"`
	// Dir holds the broker's log and state. If empty, "<data_dir>/broker" is
	// used.
	Dir string `yaml:"dir"`
	// Partitions is the partition count of topics that clients create
	// without saying, or by producing to them. If zero, 6 is used.
	Partitions int `yaml:"partitions"`
	// SyncWrites fsyncs every produced batch before acknowledging it. If
	// false, writes reach the disk on segment roll and shutdown, as with
	// Kafka's defaults: a machine crash may lose the last batches, a process
	// stop does not.
	SyncWrites bool `yaml:"sync_writes"`
}

// SetDefaults fills the empty fields.
func (c *Config) SetDefaults(dataDir string) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9092"
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(dataDir, "broker")
	}
	if c.Partitions == 0 {
		c.Partitions = 6
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %w", err))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: must not be empty"))
	}
	if c.Partitions < 0 || c.Partitions > 10000 {
		errs = append(errs, fmt.Errorf("partitions: want 1 to 10000, not %d", c.Partitions))
	}
	return errors.Join(errs...)
}

// Broker is an embedded broker: New builds it, Run loads its state and
// serves, Close releases it.
type Broker struct {
	cfg  Config
	log  *slog.Logger
	opts []kfake.Opt
	ep   *httpx.Endpoint

	life lifecycle.Guard
}

// New validates cfg and builds the broker. It opens nothing and starts
// nothing: Run loads the state under cfg.Dir and listens on cfg.Addr.
func New(cfg Config, log *slog.Logger) (*Broker, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 6
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	b := &Broker{cfg: cfg, log: log, ep: httpx.NewEndpoint(cfg.Addr)}
	b.opts = []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("strangler"),
		kfake.DataDir(cfg.Dir),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.WithLogger(kfakeLogger{log}),
		// kafka-go's consumer groups and tests stop members quickly; the
		// cluster default of 6 s is a floor that only slows rebalances.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			ln, err := b.ep.Listen()
			if err != nil {
				return nil, err
			}
			// kfake stops accepting at the first accept error; out of
			// file descriptors, the broker would serve no one again.
			return httpx.RetryAccept(ln, log), nil
		}),
	}
	if cfg.SyncWrites {
		b.opts = append(b.opts, kfake.SyncWrites())
	}
	return b, nil
}

// Addr is the host:port the broker listens on once Started is closed, the
// configured one before.
func (b *Broker) Addr() string { return b.ep.Addr() }

// Started is closed once Run listens.
func (b *Broker) Started() <-chan struct{} { return b.ep.Started() }

// Run loads the broker's state, listens and serves until ctx ends, then
// stops the broker, writing its state to disk. A port in use fails it at
// once. While it serves, it makes new files private every restrictEvery.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.life.Run("broker"); err != nil {
		return err
	}
	// The log holds customer data. kfake creates its files 0644 and its
	// directories 0755 and offers no say in it, so the broker's directory
	// is 0700, which keeps everything in it to the owner, and its files are
	// made 0600 after kfake writes them.
	if err := private.MkdirAll(b.cfg.Dir); err != nil {
		return fmt.Errorf("broker: data dir: %w", err)
	}
	if err := private.Restrict(b.cfg.Dir); err != nil {
		return fmt.Errorf("broker: data dir: %w", err)
	}
	c, err := kfake.NewCluster(b.opts...)
	if err != nil {
		return fmt.Errorf("broker on %s (data %s): %w", b.cfg.Addr, b.cfg.Dir, err)
	}
	b.restrict()
	b.log.Info("broker listening", "addr", b.Addr(), "dir", b.cfg.Dir)
	tick := time.NewTicker(restrictEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Close()
			b.restrict()
			b.log.Info("broker stopped", "addr", b.Addr())
			return nil
		case <-tick.C:
			b.restrict()
		}
	}
}

// restrictEvery is how often Run makes the files kfake has written since
// private: segments of new topics, state saved by renaming a new file into
// place.
const restrictEvery = 2 * time.Second

// restrict makes every file under the broker's directory 0600 and every
// directory 0700.
func (b *Broker) restrict() {
	if err := private.RestrictTree(b.cfg.Dir); err != nil {
		b.log.Warn("broker: restrict data dir", "dir", b.cfg.Dir, "error", err)
	}
}

// Close releases the broker. New takes nothing that Run does not release
// as it returns, so Close only makes a later Run fail; it is safe to call
// more than once, and after Run.
func (b *Broker) Close() error {
	return b.life.Close(func() error { return nil })
}

// kfakeLogger passes kfake's warnings and errors to slog. Its info and debug
// levels log every request, which is noise outside kfake's own tests.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error(fmt.Sprintf(format, args...), "component", "broker")
	case kfake.LogLevelWarn:
		l.log.Warn(fmt.Sprintf(format, args...), "component", "broker")
	}
}
