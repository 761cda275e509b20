// Command coldbench-agent runs on each Kubernetes node (deploy/agent.yaml):
// it keeps containerd's events of coldbench's pods and serves them to
// coldbench through the API server's pod proxy. See pkg/agent.
package main

import (
	"context"
	"os"

	"github.com/coldbench/coldbench/pkg/agent"
)

func main() { os.Exit(agent.Main(context.Background(), os.Args[1:], os.Stderr)) }
