package main

import (
	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/cmd/internal/relaycmd"
)

func relayCmd() *cobra.Command { return relaycmd.New() }
