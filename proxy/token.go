package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stranglerkit/strangler/internal/private"
)

// EnsureToken fills cfg.AdminToken when it is empty: from AdminTokenFile if
// that exists, else with a new random token written there with mode 0600.
// It returns where the token is kept ("" when it came from the config) and
// whether it was created.
func EnsureToken(cfg *Config) (path string, created bool, err error) {
	if cfg.AdminToken != "" {
		return "", false, nil
	}
	if cfg.AdminTokenFile == "" {
		return "", false, errors.New("proxy: neither admin_token nor admin_token_file is set")
	}
	tok, created, err := ensureSecretFile(cfg.AdminTokenFile, "admin token")
	if err != nil {
		return "", false, err
	}
	cfg.AdminToken = tok
	return cfg.AdminTokenFile, created, nil
}

// cohortSecret returns the secret that signs cohort cookies: cfg's
// CohortSecret, else the one in CohortSecretFile, which is created with a
// random secret if it does not exist.
func cohortSecret(cfg Config) (string, error) {
	if cfg.CohortSecret != "" {
		return cfg.CohortSecret, nil
	}
	s, _, err := ensureSecretFile(cfg.CohortSecretFile, "cohort secret")
	return s, err
}

// ensureSecretFile reads the secret in path, which must hold at least 16
// characters and be readable by its owner only, or, if path does not
// exist, writes a new random one there with mode 0600. what names the
// secret in errors.
func ensureSecretFile(path, what string) (secret string, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", false, fmt.Errorf("%s file %s holds no valid secret (16 characters at least); remove it to get a new one", what, path)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s file %s is readable by others (mode %v); chmod 600 it", what, path, fi.Mode().Perm())
		}
		return tok, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", false, fmt.Errorf("read %s: %w", what, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("generate %s: %w", what, err)
	}
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), private.Dir); err != nil {
		return "", false, fmt.Errorf("%s dir: %w", what, err)
	}
	if err := private.WriteFileAtomic(path, []byte(tok+"\n")); err != nil {
		return "", false, fmt.Errorf("write %s: %w", what, err)
	}
	return tok, true, nil
}

// ReadToken reads a token file, for clients such as the CLI.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return tok, nil
}
