// Command pullsim simulates a pullnet network of thousands of real nodes
// on go-libp2p's mocknet and reports how find, advertise and upkeep cost
// grow with the network, next to a plain kad-dht baseline. See SCALING.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pullsim:", err)
		os.Exit(2)
	}
}
