package peerctl

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
)

// defaultForward is where a forward listens when no address is given: a
// free port on the loopback interface.
const defaultForward = "127.0.0.1:0"

// parseForwardAddr reads the local address of a forward: HOST:PORT, or a
// bare PORT on 127.0.0.1. Port 0 picks a free port. An empty HOST (":9000")
// listens on every interface, as net.Listen does.
func parseForwardAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("want a port such as 9000, or HOST:PORT such as 127.0.0.1:9000")
	}
	host, port := "127.0.0.1", s
	if strings.ContainsAny(s, ":[]") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", fmt.Errorf("%q: want a port such as 9000, or HOST:PORT such as 127.0.0.1:9000", s)
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || port != strconv.Itoa(p) {
		return "", fmt.Errorf("%q: port %q is not a number from 0 to 65535 (0 picks a free port)", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// checkServiceAddr accepts the address of a TCP service: HOST:PORT with a
// host and a non-zero port.
func checkServiceAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want HOST:PORT, such as 127.0.0.1:8080", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return nil
}

// formatBytes shows a byte count in binary units: 512 B, 1.5 KiB, 12 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	prefix := "KMGTP"[i : i+1]
	if v < 10 {
		return fmt.Sprintf("%.1f %siB", v, prefix)
	}
	return fmt.Sprintf("%.0f %siB", v, prefix)
}

// formatUntil shows how long until t: "in 59m", "in 23h59m", "expired", or
// "-" when there is no t.
func formatUntil(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Minute:
		return "in " + d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String()
	return "in " + strings.TrimSuffix(s, "0s")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// printForwarding writes the line that says where a forward listens.
func (a *app) printForwarding(prefix string, listen, resourceID string) error {
	_, err := fmt.Fprintln(a.stdout, sanitize(fmt.Sprintf("%sforwarding %s → %s", prefix, listen, resourceID)))
	return err
}

func (a *app) forwardCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "forward SESSION [ADDR]",
		Short: "Open a local port to the TCP service of a granted session",
		Long: `Open a local port whose every connection is carried, through the peer-to-peer
network, to the TCP service of a session this daemon was granted (see
'peerctl connect' and 'peerctl sessions').

ADDR is where to listen: a port such as 9000 (on 127.0.0.1), or HOST:PORT.
Port 0, the default, picks a free port. The forward stays open, also
across restarts of the daemon, until 'peerctl close SESSION'.`,
		Example: `  peerctl forward bciqd... 9000
  peerctl forward bciqd... 0.0.0.0:9000`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usageErrorf("forward: missing the SESSION")
			case len(args) > 2:
				return usageErrorf("forward takes only SESSION and ADDR; unexpected %q", args[2])
			}
			return nil
		},
		ValidArgsFunction: a.completeHeldSessions,
		RunE: func(cmd *cobra.Command, args []string) error {
			listen := defaultForward
			if len(args) == 2 {
				var err error
				if listen, err = parseForwardAddr(args[1]); err != nil {
					return usageErrorf("forward: ADDR %v", err)
				}
			}
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				f, err := c.Forward(ctx, args[0], listen)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(f)
				}
				return a.printForwarding("", f.Listen, f.ResourceID)
			})
		},
	}
}

func (a *app) forwardsCommand() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "forwards",
		Short: "List the daemon's forwards and their traffic",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				fs, err := c.Forwards(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(fs)
				}
				if len(fs) == 0 {
					a.note("no forwards; open one with 'peerctl forward' or 'peerctl connect --forward'")
					return nil
				}
				rows := make([][]string, 0, len(fs))
				for _, f := range fs {
					rows = append(rows, []string{ids(f.Session, noTrunc), f.Listen, ids(f.ResourceID, noTrunc), ids(f.Provider, noTrunc),
						formatBytes(f.BytesIn), formatBytes(f.BytesOut), fmt.Sprintf("%d/%d", f.ConnsOpen, f.ConnsTotal), f.Error})
				}
				return a.printTable([]string{"SESSION", "LISTEN", "RESOURCE", "PROVIDER", "IN", "OUT", "CONNS", "ERROR"}, rows)
			})
		},
	}
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) closeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "close SESSION",
		Short: "Close a session's forward and its connections",
		Long: `Close the forward of a session and its connections. The session stays
granted: 'peerctl forward' opens a new forward for it.`,
		Args:              exactArgs(1, "the forward's SESSION"),
		ValidArgsFunction: a.completeForwardSessions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.CloseForward(ctx, args[0]); err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(sessionOutput{args[0]})
				}
				_, err := fmt.Fprintf(a.stdout, "closed the forward of %s\n", args[0])
				return err
			})
		},
	}
}

func (a *app) revokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke SESSION",
		Short: "End a session this daemon granted",
		Long: `End a session this daemon granted as a provider: its live tunnels close and
no new one opens. The consumer has to connect again.`,
		Args:              exactArgs(1, "the SESSION"),
		ValidArgsFunction: a.completeGrantedSessions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.Revoke(ctx, args[0]); err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(sessionOutput{args[0]})
				}
				_, err := fmt.Fprintf(a.stdout, "revoked %s\n", args[0])
				return err
			})
		},
	}
}

func (a *app) sessionsCommand() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List the sessions this daemon granted and holds",
		Long: `List sessions: those this daemon granted to consumers (role provider) and
those it was granted (role consumer), with their tunnel traffic.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				ss, err := c.Sessions(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(ss)
				}
				if len(ss) == 0 {
					a.note("no sessions")
					return nil
				}
				now := time.Now()
				rows := make([][]string, 0, len(ss))
				for _, s := range ss {
					// The session is shown whole: it is what forward, close
					// and revoke take.
					rows = append(rows, []string{s.Role, s.Session, ids(s.ResourceID, noTrunc), ids(s.Peer, noTrunc),
						formatUntil(s.Expires, now), formatBytes(s.BytesIn), formatBytes(s.BytesOut), yesNo(s.Revoked)})
				}
				return a.printTable([]string{"ROLE", "SESSION", "RESOURCE", "PEER", "EXPIRES", "IN", "OUT", "REVOKED"}, rows)
			})
		},
	}
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

// completeSessionsWhere completes the sessions the daemon lists that keep
// says to, described by their resource and peer.
func (a *app) completeSessionsWhere(cmd *cobra.Command, args []string, keep func(client.Session) bool) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	if len(args) == 0 {
		a.call(cmd, func(ctx context.Context, c *client.Client) error {
			ss, err := c.Sessions(ctx)
			for _, s := range ss {
				if keep(s) {
					out = append(out, cobra.CompletionWithDesc(s.Session, s.Role+": "+shortID(s.ResourceID)+" with "+shortID(s.Peer)))
				}
			}
			return err
		})
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeHeldSessions completes the sessions the daemon holds.
func (a *app) completeHeldSessions(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.completeSessionsWhere(cmd, args, func(s client.Session) bool { return s.Role == "consumer" })
}

// completeGrantedSessions completes the sessions the daemon granted and has
// not revoked.
func (a *app) completeGrantedSessions(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.completeSessionsWhere(cmd, args, func(s client.Session) bool { return s.Role == "provider" && !s.Revoked })
}

// completeForwardSessions completes the sessions of the daemon's forwards.
func (a *app) completeForwardSessions(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	if len(args) == 0 {
		a.call(cmd, func(ctx context.Context, c *client.Client) error {
			fs, err := c.Forwards(ctx)
			for _, f := range fs {
				out = append(out, cobra.CompletionWithDesc(f.Session, f.Listen+" → "+shortID(f.ResourceID)))
			}
			return err
		})
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
