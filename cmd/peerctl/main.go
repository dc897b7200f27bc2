// Command peerctl controls a running pulld: advertise resources, find
// others' and connect to them. See 'peerctl --help'.
//
// Everything lives in package peerctl, so that tests and other programs can
// run the same commands; this main only hands over the process.
package main

import (
	"os"

	"github.com/pullnet/pullnet/peerctl"
)

func main() {
	os.Exit(peerctl.Main())
}
