package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/host"
)

func newHostCmd() *cobra.Command {
	cmd := groupCmd(&cobra.Command{
		Use:   "host",
		Short: "Tune the host's CPU frequency settings for measuring, and restore them",
	})
	run := func(use, short string, f func(*host.Tuner) ([]string, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				lines, err := f(host.Default())
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
				if errors.Is(err, host.ErrNotExposed) {
					fmt.Fprintln(cmd.OutOrStdout(), err)
					return nil
				}
				return err
			},
		}
	}
	cmd.AddCommand(
		run("tune", "Set every CPU governor to performance and turn boost off, saving the previous state", (*host.Tuner).Tune),
		run("restore", "Put back the governor and boost state saved by `host tune`", (*host.Tuner).Restore),
	)
	return cmd
}
