package simnet

import (
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
)

// firstOctets are public IPv4 /8 blocks the simulated peers live in: no
// private, loopback, shared (100.64/10 sits in 100), multicast or reserved
// ranges. Each gives 256 /16 blocks.
var firstOctets = func() []int {
	var out []int
	for o := 11; o <= 223; o++ {
		switch o {
		case 100, 127, 169, 172, 192, 198, 203:
			continue // shared, loopback, link-local, private and documentation blocks
		}
		out = append(out, o)
	}
	return out
}()

// Blocks16 is how many distinct /16 blocks Addr spreads peers over before
// two peers share one.
var Blocks16 = len(firstOctets) * 256

// Addr gives peer i a public IPv4 address: peers 0 … Blocks16-1 each get a
// /16 of their own, later ones share blocks round-robin (a different /24
// each time).
func Addr(i int) ma.Multiaddr {
	block, round := i%Blocks16, i/Blocks16
	a := firstOctets[block/256]
	b := block % 256
	c := 1 + round%250
	d := 1 + (round/250)%250
	return ma.StringCast(fmt.Sprintf("/ip4/%d.%d.%d.%d/tcp/4001", a, b, c, d))
}
