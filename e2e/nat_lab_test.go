//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// natLab is a small internet in network namespaces:
//
//	pub   the public segment, a bridge with the relay on it (natPubRelay)
//	nat1  a router masquerading the provider's segment onto pub
//	nat2  a router masquerading the consumer's segment onto pub
//	prov  the provider, only reachable through nat1
//	cons  the consumer, only reachable through nat2
//
// It is IPv6 only. The public side is 3fff::/20, the documentation prefix
// (RFC 9637): never routed anywhere, yet libp2p counts it as public, as NAT
// traversal needs — libp2p treats every IPv4 test or documentation range
// (198.18.0.0/15, 192.0.2.0/24, …) as unroutable, and its AutoNAT, relay
// addresses and hole punching ignore such addresses. The private sides are
// ULA (fd00::/8), which libp2p counts as private. No namespace has a route
// out of the lab: pub has no default route, and the routers' only uplink is
// pub.
type natLab struct {
	t  *testing.T
	fw string // "nft" or "iptables": what the routers masquerade with

	pub, nat1, nat2, prov, cons string // namespace names
	made                        []string
}

// Addresses in the lab.
const (
	natPubRelay = "3fff:71::1"  // the relay, on pub's bridge
	natPubNAT1  = "3fff:71::11" // nat1's public side
	natPubNAT2  = "3fff:71::12" // nat2's public side
	natProvNet  = "fd71:1::"    // the provider's segment: nat1 is ::1, the provider ::2
	natConsNet  = "fd71:2::"    // the consumer's segment: nat2 is ::1, the consumer ::2
)

// newNATLab builds the lab, or skips the test with the reason when this
// machine cannot: not root, no iproute2, no nftables or iptables, or no
// permission to make network namespaces (an unprivileged container). Every
// namespace and link it makes is removed when the test ends, pass or fail.
//
// With symmetric, nat2 maps every flow to a fresh random port (an
// endpoint-dependent mapping, as carrier-grade and many corporate NATs do):
// the port the relay sees is useless to anyone else, so hole punching to
// the consumer cannot work.
func newNATLab(t *testing.T, symmetric bool) *natLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces (CI runs as root)")
	}
	// iproute2 and the firewalls live in sbin, which a non-login PATH may lack.
	t.Setenv("PATH", os.Getenv("PATH")+string(os.PathListSeparator)+"/usr/sbin"+string(os.PathListSeparator)+"/sbin")
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip (.ci/run installs it): ", err)
	}
	natSweep(t)
	lab := &natLab{t: t}
	switch {
	case natHave("nft"):
		lab.fw = "nft"
	case natHave("ip6tables"):
		lab.fw = "iptables"
	default:
		t.Skip("needs nftables or iptables to masquerade (.ci/run installs nftables)")
	}

	// Unique names, so that parallel runs on one machine do not clash.
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	lab.pub, lab.nat1, lab.nat2 = "pn-pub-"+suffix, "pn-nat1-"+suffix, "pn-nat2-"+suffix
	lab.prov, lab.cons = "pn-prov-"+suffix, "pn-cons-"+suffix

	// Removing a namespace removes its links (and a veth's peer with it),
	// but the kernel does that in the background: delete the links first,
	// then the namespaces, and check that nothing of ours is left.
	t.Cleanup(lab.teardown)

	if out, err := exec.Command("ip", "netns", "add", lab.pub).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace (no permission here?): ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	lab.made = append(lab.made, lab.pub)
	for _, ns := range []string{lab.nat1, lab.nat2, lab.prov, lab.cons} {
		lab.ip("netns", "add", ns)
		lab.made = append(lab.made, ns)
	}
	for _, ns := range lab.made {
		lab.ip("-n", ns, "link", "set", "lo", "up")
	}

	// pub: a bridge, with the relay's address on it.
	lab.ip("-n", lab.pub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	lab.ip("-n", lab.pub, "addr", "add", natPubRelay+"/64", "dev", "br0", "nodad")
	lab.ip("-n", lab.pub, "link", "set", "br0", "up")

	for _, r := range []struct {
		router, host, port, wan, lanNet string
		symmetric                       bool
	}{
		{lab.nat1, lab.prov, "n1", natPubNAT1, natProvNet, false},
		{lab.nat2, lab.cons, "n2", natPubNAT2, natConsNet, symmetric},
	} {
		// The router's public side, a port on pub's bridge.
		lab.ip("link", "add", r.port, "netns", lab.pub, "type", "veth", "peer", "name", "wan", "netns", r.router)
		lab.ip("-n", lab.pub, "link", "set", r.port, "master", "br0", "up")
		lab.ip("-n", r.router, "addr", "add", r.wan+"/64", "dev", "wan", "nodad")
		lab.ip("-n", r.router, "link", "set", "wan", "up")
		// Its private side, with the one host behind it.
		lab.ip("link", "add", "lan", "netns", r.router, "type", "veth", "peer", "name", "eth0", "netns", r.host)
		lab.ip("-n", r.router, "addr", "add", r.lanNet+"1/64", "dev", "lan", "nodad")
		lab.ip("-n", r.router, "link", "set", "lan", "up")
		lab.ip("-n", r.host, "addr", "add", r.lanNet+"2/64", "dev", "eth0", "nodad")
		lab.ip("-n", r.host, "link", "set", "eth0", "up")
		lab.ip("-n", r.host, "-6", "route", "add", "default", "via", r.lanNet+"1")
		lab.exec(r.router, nil, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")
		lab.masquerade(r.router, r.symmetric)
	}
	return lab
}

// masquerade makes router a home NAT: what leaves by wan takes wan's address
// (Linux keeps the source port when it can: an endpoint-independent
// mapping), and nothing from outside gets in or to the router unless it
// answers something that went out. With symmetric, every flow gets a random
// source port instead.
func (lab *natLab) masquerade(router string, symmetric bool) {
	nftRandom, iptRandom := "", []string{}
	if symmetric {
		nftRandom, iptRandom = " fully-random", []string{"--random-fully"}
	}
	switch lab.fw {
	case "nft":
		lab.exec(router, strings.NewReader(`
table ip6 pullnet_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" masquerade`+nftRandom+`
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" meta l4proto { tcp, udp } ct state new drop
	}
}
`), "nft", "-f", "-")
	case "iptables":
		for _, rule := range [][]string{
			append([]string{"-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}, iptRandom...),
			{"-P", "FORWARD", "DROP"},
			{"-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT"},
			{"-A", "INPUT", "-i", "wan", "-p", "tcp", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"},
			{"-A", "INPUT", "-i", "wan", "-p", "udp", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"},
		} {
			lab.exec(router, nil, "ip6tables", rule...)
		}
	}
}

// teardown deletes the links, then the namespaces the lab made, and checks
// that none is left.
func (lab *natLab) teardown() {
	t := lab.t
	links := map[string][]string{lab.pub: {"n1", "n2", "br0"}, lab.nat1: {"lan"}, lab.nat2: {"lan"}}
	for _, ns := range lab.made {
		for _, l := range links[ns] {
			// A veth whose peer went first is gone already: ignore errors.
			_ = exec.Command("ip", "-n", ns, "link", "del", l).Run()
		}
	}
	for _, ns := range lab.made {
		// The daemons were stopped before (cleanups run last in, first out).
		if left := natKillIn(ns); len(left) > 0 {
			t.Errorf("teardown: processes still running in %s, killed: %v", ns, left)
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("teardown: ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Errorf("teardown: ip netns list: %v", err)
		return
	}
	for _, ns := range lab.made {
		if strings.Contains(string(out), ns) {
			t.Errorf("teardown: namespace %s is still there", ns)
		}
	}
}

// natLabName matches the namespaces a natLab makes; the number is the PID
// of the test process that made it.
var natLabName = regexp.MustCompile(`^pn-(pub|nat1|nat2|prov|cons)-([0-9]+)-[0-9a-f]{6}$`)

// natSweep removes what a killed run left behind (a test killed by its
// timeout runs no cleanup): the namespaces of labs whose test process is
// gone, and the daemons still running in them.
func natSweep(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return // newNATLab finds out why
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		ns := fields[0]
		m := natLabName.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[2])
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH {
			continue // its test is still running
		}
		natKillIn(ns)
		if err := exec.Command("ip", "netns", "del", ns).Run(); err == nil {
			t.Logf("removed namespace %s, left behind by a run that was killed", ns)
		}
	}
}

// natKillIn kills the processes left in namespace ns, and reports them.
func natKillIn(ns string) []string {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var left []string
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			left = append(left, fmt.Sprintf("%d (%s)", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte(" "))))
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	return left
}

// ip runs iproute2's ip and fails the test if it fails.
func (lab *natLab) ip(args ...string) {
	lab.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		lab.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// exec runs a command in namespace ns and fails the test if it fails.
func (lab *natLab) exec(ns string, stdin *strings.Reader, name string, args ...string) {
	lab.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		lab.t.Fatalf("in %s: %s %s: %v: %s", ns, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// describe is the lab's addresses and routers' rules, for a failure report.
func (lab *natLab) describe() string {
	var b strings.Builder
	for _, ns := range lab.made {
		out, _ := exec.Command("ip", "-n", ns, "-br", "addr").CombinedOutput()
		fmt.Fprintf(&b, "== %s\n%s", ns, out)
	}
	for _, ns := range []string{lab.nat1, lab.nat2} {
		var out []byte
		if lab.fw == "nft" {
			out, _ = exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
		} else {
			out, _ = exec.Command("ip", "netns", "exec", ns, "ip6tables-save").CombinedOutput()
		}
		fmt.Fprintf(&b, "== %s rules\n%s", ns, out)
	}
	return b.String()
}

// natInNetns runs f on an OS thread that has joined network namespace ns, so
// that the sockets f opens (a listener, a dialled connection) live there;
// they stay there when used from other goroutines. The thread goes back to
// its own namespace afterwards; if it cannot, it is never used again.
func natInNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own namespace: %w", err)
			return
		}
		defer unix.Close(home)
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: still locked, so the thread ends with this goroutine
	}()
	return <-errc
}

func natHave(cmd string) bool {
	_, err := exec.LookPath(cmd)
	return err == nil
}
