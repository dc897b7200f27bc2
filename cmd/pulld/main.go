// Command pulld is the pullnet daemon. See internal/daemon for its commands.
package main

import (
	"os"

	"github.com/pullnet/pullnet/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(os.Args[1:], os.Stdout, os.Stderr))
}
