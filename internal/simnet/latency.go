package simnet

import (
	"fmt"
	"strings"
	"time"
)

// Latency is the distribution of one-way link delays: uniform between Min
// and Max, fixed when they are equal. A link's delay is a function of the
// seed and the two peers' indices only, so a run is reproducible whatever
// order links are made in.
type Latency struct {
	Min, Max time.Duration
}

// ParseLatency reads "10ms-150ms" (uniform) or "50ms" (fixed).
func ParseLatency(s string) (Latency, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	a, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return Latency{}, fmt.Errorf("latency %q: %w", s, err)
	}
	b := a
	if found {
		if b, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
			return Latency{}, fmt.Errorf("latency %q: %w", s, err)
		}
	}
	if a < 0 || b < a {
		return Latency{}, fmt.Errorf("latency %q: want 0 <= min <= max", s)
	}
	return Latency{Min: a, Max: b}, nil
}

func (l Latency) String() string {
	if l.Min == l.Max {
		return l.Min.String()
	}
	return l.Min.String() + "-" + l.Max.String()
}

// Mean is the mean one-way delay.
func (l Latency) Mean() time.Duration { return (l.Min + l.Max) / 2 }

// RTT is the mean round-trip time of a link, the unit the simulator
// reports times in.
func (l Latency) RTT() time.Duration { return 2 * l.Mean() }

// Between is the one-way delay of the link between peers i and j under
// seed: symmetric, and the same every time it is asked.
func (l Latency) Between(seed int64, i, j int) time.Duration {
	if l.Max == l.Min {
		return l.Min
	}
	if i > j {
		i, j = j, i
	}
	x := splitmix64(uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(i)<<32 ^ uint64(j))
	f := float64(x>>11) / float64(1<<53)
	return l.Min + time.Duration(f*float64(l.Max-l.Min))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
