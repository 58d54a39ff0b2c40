package consumer

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config configures one consumer. It is not a section of Strangler's own
// config: each service that consumes events embeds it in its own.
type Config struct {
	// Name identifies the consumer: it is the Kafka consumer group and the
	// consumer column of the inbox. Two deployments of one service share it;
	// two services never do.
	Name string `yaml:"name"`
	// Topics are the topics to read, in full ("strangler.product"). Use
	// changefeed.Topic to build them from aggregate types.
	Topics []string `yaml:"topics"`
	// MaxAttempts is how often a handler is tried on one event before the
	// event goes to the dead-letter topic. If zero, 5 is used.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the wait before the second attempt; it doubles up to
	// RetryBackoffMax. If zero, 100ms and 5s are used.
	RetryBackoff    time.Duration `yaml:"retry_backoff"`
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// MaxBatch is the most events handled in one database transaction. The
	// consumer takes what has already arrived, up to this, so that a burst
	// costs one commit rather than one each. If zero, 256 is used.
	MaxBatch int `yaml:"max_batch"`
	// IgnoreOrigins lists origin tags whose events are skipped: a service
	// that syncs both ways lists its own, so that its changes do not come
	// back to it.
	IgnoreOrigins []string `yaml:"ignore_origins"`
	// DeadLetter sends events that fail every attempt to <topic>.dlq. If
	// nil, true. When false, such an event stops the consumer instead.
	DeadLetter *bool `yaml:"dead_letter"`
	// SessionTimeout is how long the group waits for a silent member
	// before it gives the member's partitions to others. If zero, 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// MaxWait is the longest a fetch waits on the broker for new events. If
	// zero, 250ms.
	MaxWait time.Duration `yaml:"max_wait"`
}

// SetDefaults fills the empty fields.
func (c *Config) SetDefaults() {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 5 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 256
	}
	if c.DeadLetter == nil {
		t := true
		c.DeadLetter = &t
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxWait == 0 {
		c.MaxWait = 250 * time.Millisecond
	}
}

var consumerName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if !consumerName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q: want 1 to 200 of a-z, A-Z, 0-9, '.', '_' or '-'", c.Name))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("topics: name at least one"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max_attempts: want at least 1, not %d", c.MaxAttempts))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 10000 {
		errs = append(errs, fmt.Errorf("max_batch: want 1 to 10000, not %d", c.MaxBatch))
	}
	if c.RetryBackoff <= 0 || c.RetryBackoffMax < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("retry_backoff: want 0 < retry_backoff (%s) <= retry_backoff_max (%s)", c.RetryBackoff, c.RetryBackoffMax))
	}
	if c.SessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("session_timeout: want at least 1s, not %s", c.SessionTimeout))
	}
	if c.MaxWait <= 0 {
		errs = append(errs, fmt.Errorf("max_wait: must be positive, not %s", c.MaxWait))
	}
	return errors.Join(errs...)
}
