package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/proxy"
)

// adminAddrFile names the file under the data dir in which a running proxy
// leaves its admin API's bound address, next to the token file, so that
// the CLI finds a proxy whose admin address it was not told: one started
// with --admin-addr, or on port 0.
const adminAddrFile = "admin.addr"

// writeAdminAddr leaves addr in the data dir's address file.
func writeAdminAddr(dataDir, addr string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	return writeChecked(filepath.Join(dataDir, adminAddrFile), []byte(addr+"\n"), 0o600, nil)
}

// removeAdminAddr removes the data dir's address file if it still holds
// addr, and not the address of a proxy started since on the same data dir.
func removeAdminAddr(dataDir, addr string) {
	path := filepath.Join(dataDir, adminAddrFile)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == addr {
		_ = os.Remove(path)
	}
}

// adminAddr is the admin API address that the operator commands talk to:
// the configured one (--admin, STRANGLER_PROXY_ADMIN_ADDR, the config
// file), unless that is the default or has port 0 and a proxy running on
// the same data dir left its bound address there.
func adminAddr(cfg *config.Config) string {
	configured := cfg.Proxy.AdminAddr
	var def proxy.Config
	def.SetDefaults(cfg.DataDir)
	_, port, _ := net.SplitHostPort(configured)
	if configured != def.AdminAddr && port != "0" {
		return configured
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, adminAddrFile))
	if err != nil {
		return configured
	}
	if left := strings.TrimSpace(string(b)); left != "" {
		return left
	}
	return configured
}
