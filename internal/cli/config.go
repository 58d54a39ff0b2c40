package cli

import (
	"github.com/spf13/cobra"
)

func init() { register(newConfigCmd) }

func newConfigCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective config, secrets redacted",
		Long: `Print the effective config after every layer (defaults, the YAML file,
STRANGLER_* variables, flags), as YAML. Secrets and DSN passwords are redacted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			b, err := cfg.YAML()
			if err != nil {
				return err
			}
			_, err = a.Stdout.Write(b)
			return err
		},
	})
	return cmd
}
