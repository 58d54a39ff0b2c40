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
	path = cfg.AdminTokenFile
	if path == "" {
		return "", false, errors.New("proxy: neither admin_token nor admin_token_file is set")
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", false, fmt.Errorf("admin token file %s holds no valid token (16 characters at least); remove it to get a new one", path)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("admin token file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
		}
		cfg.AdminToken = tok
		return path, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("generate admin token: %w", err)
	}
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), private.Dir); err != nil {
		return "", false, fmt.Errorf("admin token dir: %w", err)
	}
	if err := writeFileAtomic(path, []byte(tok+"\n"), private.File); err != nil {
		return "", false, fmt.Errorf("write admin token: %w", err)
	}
	cfg.AdminToken = tok
	return path, true, nil
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
