package peerctl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

// Defaults of the commands that wait on the network. They match the
// daemon's, and are sent explicitly so that --help tells the truth.
const (
	defaultFindTimeout    = 10 * time.Second
	defaultConnectTimeout = 150 * time.Second
	// networkSlack is how much longer than its own timeout peerctl waits for
	// the daemon's answer to a find or connect, so that the daemon's
	// answer, not peerctl's deadline, ends the call.
	networkSlack = 30 * time.Second
)

func (a *app) findCommand() *cobra.Command {
	var (
		limit    int
		timeout  time.Duration
		noTrunc  bool
		minTrust float64
		stream   bool
	)
	cmd := &cobra.Command{
		Use:   "find QUERY...",
		Short: "Search the network",
		Long: `Search the network for resources. The arguments, joined by spaces, form the
query, for example
  peerctl find kind:compute tag:gpu 'gpu.count>=2' '"stable diffusion"'

Results are ranked best first by relevance × (1+trust)/2, where trust is this
daemon's trust in the provider, from -1 (distrusted) through 0 (nothing known)
to +1 (see 'peerctl trust'). The find ends at --limit results, when every
provider found has answered, or at --timeout. With --stream, each result is
printed as it arrives instead (each provider's results in order of relevance).
--min-trust leaves out providers trusted less.

Exit status: 0 if something matched, 1 if nothing did, 2 on an error.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("find: missing the QUERY")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usageErrorf("--limit %d: want 0 (the daemon's default) or more", limit)
			}
			if timeout <= 0 {
				return usageErrorf("--timeout %v: want a positive duration", timeout)
			}
			if minTrust < -1 || minTrust > 1 {
				return usageErrorf("--min-trust %v: want a value from -1 to 1", minTrust)
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+networkSlack)
			defer cancel()
			opt := client.FindOptions{Limit: limit, Timeout: timeout, MinTrust: minTrust, Ranked: !stream}
			return a.find(ctx, c, strings.Join(args, " "), opt, noTrunc)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after this many results (0: the daemon's default)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultFindTimeout, "stop searching after this long")
	cmd.Flags().Float64Var(&minTrust, "min-trust", 0, "leave out providers trusted less than this, -1…1 (0: no minimum)")
	cmd.Flags().BoolVar(&stream, "stream", false, "print results as they arrive rather than ranked at the end")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) find(ctx context.Context, c *client.Client, query string, opt client.FindOptions, noTrunc bool) error {
	start := time.Now()
	var cols findColumns
	n := 0
	for r, err := range c.Find(ctx, query, opt) {
		if err != nil {
			return err
		}
		n++
		if a.jsonOut() {
			if err := a.printJSON(r); err != nil {
				return err
			}
			continue
		}
		if n == 1 {
			cols = newFindColumns(noTrunc)
			if err := cols.print(a, "ID", "KIND", "NAME", "PROVIDER", "TRUST", "ELAPSED"); err != nil {
				return err
			}
		}
		name := r.Resource.Name
		if !noTrunc {
			name = truncate(name, maxNameWidth)
		}
		if err := cols.print(a, ids(r.ID, noTrunc), r.Resource.Kind, name, ids(r.Provider, noTrunc), formatTrust(r.Trust), formatMS(r.ElapsedMS)); err != nil {
			return err
		}
	}
	elapsed := time.Since(start).Round(10 * time.Millisecond)
	if n == 0 {
		a.note("nothing found in %v", elapsed)
		return exitError{code: ExitNone}
	}
	a.note("%d found in %v", n, elapsed)
	return nil
}

// findColumns lays out find's text output in fixed-width columns rather than
// with a tabwriter, which would hold every row back until the find ends.
type findColumns struct{ widths []int }

func newFindColumns(noTrunc bool) findColumns {
	idWidth := shortIDLen
	if noTrunc {
		// Room for a whole resource ID (a CIDv1 in base32) or peer ID;
		// longer names push the later columns out.
		idWidth = 59
	}
	return findColumns{widths: []int{idWidth, 10, maxNameWidth, idWidth, 5}}
}

func (fc findColumns) print(a *app, cells ...string) error {
	var b strings.Builder
	for i, c := range cells {
		c = sanitize(c)
		if i < len(fc.widths) {
			c = pad(c, fc.widths[i]) + "  "
		}
		b.WriteString(c)
	}
	_, err := fmt.Fprintln(a.stdout, strings.TrimRight(b.String(), " "))
	return err
}

func (a *app) connectCommand() *cobra.Command {
	var (
		message string
		timeout time.Duration
		forward string
	)
	cmd := &cobra.Command{
		Use:   "connect ID [--forward ADDR]",
		Short: "Ask a resource's provider for access",
		Long: `Ask the provider of a resource (an ID from 'peerctl find') for access, and
wait for the answer: a session and how to reach the resource, or the
provider's reason for declining.

With --forward, a granted TCP service also gets a local port whose every
connection is carried to the service: ADDR is a port such as 9000 (on
127.0.0.1) or HOST:PORT, and port 0 picks a free one. If the forward
cannot be opened, the session is still granted; 'peerctl forward' retries.

Exit status: 0 if granted, 1 if declined, 2 on an error.`,
		Example: `  peerctl connect bafkrei... --forward 9000
  peerctl connect bafkrei... --forward 0 -o json`,
		Args: exactArgs(1, "the resource ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usageErrorf("--timeout %v: want a positive duration", timeout)
			}
			opt := client.ConnectOptions{Message: message, Timeout: timeout}
			if cmd.Flags().Changed("forward") {
				addr, err := parseForwardAddr(forward)
				if err != nil {
					return usageErrorf("--forward %v", err)
				}
				opt.Forward = addr
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+networkSlack)
			defer cancel()
			a.note("asking the provider of %s…", shortID(args[0]))
			g, err := c.Connect(ctx, args[0], opt)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				err = a.printJSON(g)
			} else {
				err = a.printGrant(g)
			}
			if err != nil {
				return err
			}
			if !g.Granted {
				return exitError{code: ExitNone}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "a note to the provider, shown if they decide by hand")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultConnectTimeout, "how long to wait for the provider's answer")
	cmd.Flags().StringVar(&forward, "forward", "", "for a TCP service, also listen on this local port or HOST:PORT (0: a free port)")
	cmd.RegisterFlagCompletionFunc("forward", cobra.NoFileCompletions)
	return cmd
}

func (a *app) printGrant(g client.ConnectResult) error {
	var line string
	switch {
	case !g.Granted && g.Reason == "":
		line = "declined (no reason given)"
	case !g.Granted:
		line = "declined: " + g.Reason
	case g.Forward != "":
		line = fmt.Sprintf("granted session %s; forwarding %s → %s", g.Session, g.Forward, g.ResourceID)
	case g.Access.Type == "":
		line = "granted session " + g.Session
	case g.Access.Value == "" && g.Access.Type == resource.AccessTCP:
		// The provider keeps a service's address to itself: the way in is
		// a forward.
		line = fmt.Sprintf("granted session %s (a TCP service: 'peerctl forward %s' opens a local port to it)", g.Session, g.Session)
	case g.Access.Value == "":
		line = fmt.Sprintf("granted session %s (access %s)", g.Session, g.Access.Type)
	default:
		line = fmt.Sprintf("granted session %s (access %s %s)", g.Session, g.Access.Type, g.Access.Value)
	}
	_, err := fmt.Fprintln(a.stdout, sanitize(line))
	return err
}
