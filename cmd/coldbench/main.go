// Command coldbench measures serverless cold-start latency across container
// runtimes. See README.md.
package main

import (
	"os"

	"github.com/coldbench/coldbench/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
