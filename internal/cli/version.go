package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/internal/buildinfo"
)

func init() { register(newVersionCmd) }

func newVersionCmd(a *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			switch output {
			case "json":
				return json.NewEncoder(a.Stdout).Encode(info)
			case "", "text":
				fmt.Fprintf(a.Stdout, "strangler %s", info.Version)
				if info.Revision != "" {
					fmt.Fprintf(a.Stdout, " (%s)", info.Revision)
				}
				fmt.Fprintf(a.Stdout, " %s\n", info.GoVersion)
				return nil
			default:
				return usageError{fmt.Errorf("--output: want text or json, not %q", output)}
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
