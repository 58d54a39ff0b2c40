// Package logging builds the process's log/slog logger from config.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config selects the log level and format.
type Config struct {
	// Level is debug, info, warn or error. If empty, info is used.
	Level string `yaml:"level"`
	// Format is json or text. If empty, json is used, one object per line,
	// ready for a log shipper.
	Format string `yaml:"format"`
}

// SetDefaults fills the empty fields.
func (c *Config) SetDefaults() {
	if c.Level == "" {
		c.Level = "info"
	}
	if c.Format == "" {
		c.Format = "json"
	}
}

// Validate reports unknown levels and formats.
func (c Config) Validate() error {
	if _, err := parseLevel(c.Level); err != nil {
		return err
	}
	switch c.Format {
	case "json", "text":
		return nil
	default:
		return fmt.Errorf("format: want json or text, not %q", c.Format)
	}
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("level: want debug, info, warn or error, not %q", s)
}

// New returns a logger writing to w.
func New(c Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
