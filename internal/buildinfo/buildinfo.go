// Package buildinfo reports the version the binary was built from.
package buildinfo

import "runtime/debug"

// Version is set at link time with -ldflags "-X ...buildinfo.Version=v1.2.3".
// When empty, Get falls back to the module version and VCS revision that the
// Go toolchain recorded.
var Version = ""

// Info describes the build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"go_version"`
}

// Get returns the build's info.
func Get() Info {
	info := Info{Version: Version}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if info.Version == "" {
			info.Version = "devel"
		}
		return info
	}
	info.GoVersion = bi.GoVersion
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			info.Revision = s.Value
		}
	}
	return info
}
