package peerctl

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
)

// sessions is "1 session" or "N sessions".
func sessions(n int) string {
	if n == 1 {
		return "1 session"
	}
	return fmt.Sprintf("%d sessions", n)
}

// formatTrust shows a trust value with its sign: +0.42, -0.50; 0.00 for a
// peer nothing is known of.
func formatTrust(v float64) string {
	if v == 0 {
		return "0.00"
	}
	return fmt.Sprintf("%+.2f", v)
}

func (a *app) rateCommand() *cobra.Command {
	var (
		score   float64
		comment string
	)
	cmd := &cobra.Command{
		Use:   "rate SESSION --score S [--comment C]",
		Short: "Rate a session this daemon took part in",
		Long: `Rate a session (an ID from 'peerctl sessions'): as its consumer you rate the
provider, as its provider you rate the consumer. S runs from -1 (bad) through
0 to +1 (good), in steps of 0.01. The rating is signed, embeds the provider's
receipt of the session, and spreads to other daemons, whose trust in the
rated peer it moves as far as they trust you. Rating a session again replaces
your earlier rating of it.`,
		Example: `  peerctl rate 3f9c2a... --score 1 --comment "fast, as described"
  peerctl rate 3f9c2a... --score=-1 --comment "never answered"`,
		Args: exactArgs(1, "the session ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("score") {
				return usageErrorf("rate: missing --score, from -1 (bad) to +1 (good)")
			}
			if score < -1 || score > 1 {
				return usageErrorf("--score %v: want a value from -1 to 1", score)
			}
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.Rate(ctx, args[0], score, comment)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(r)
				}
				_, err = fmt.Fprintf(a.stdout, "rated %s %s of session %s\n", r.Subject, formatTrust(r.Score), r.Session)
				return err
			})
		},
	}
	cmd.Flags().Float64Var(&score, "score", 0, "from -1 (bad) to +1 (good)")
	cmd.Flags().StringVar(&comment, "comment", "", "a short comment, at most 512 bytes")
	return cmd
}

func (a *app) ratingsCommand() *cobra.Command {
	var (
		limit   int
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "ratings [PEER]",
		Short: "List the ratings this daemon holds",
		Long: `List the ratings this daemon holds, its own and those heard from others, about
PEER or about everyone, newest first.

Exit status: 0 if there are some, 1 if none, 2 on an error.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := ""
			if len(args) == 1 {
				p = args[0]
			}
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				rs, err := c.Ratings(ctx, p, limit)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					err = a.printJSON(rs)
				} else if len(rs) > 0 {
					rows := make([][]string, 0, len(rs))
					for _, r := range rs {
						rows = append(rows, []string{ids(r.Subject, noTrunc), formatTrust(r.Score), ids(r.Rater, noTrunc),
							ids(r.Session, noTrunc), r.Created.Local().Format("2006-01-02 15:04"), truncate(r.Comment, maxNameWidth)})
					}
					err = a.printTable([]string{"SUBJECT", "SCORE", "RATER", "SESSION", "CREATED", "COMMENT"}, rows)
				}
				if err != nil {
					return err
				}
				if len(rs) == 0 {
					a.note("no ratings")
					return exitError{code: ExitNone}
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many (0: the daemon's default, 100)")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) trustCommand() *cobra.Command {
	var (
		limit   int
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "trust [PEER]",
		Short: "Show, explain and set this daemon's trust in peers",
		Long: `Show this daemon's trust in PEER, with the raters behind it, or list every peer
it has evidence about, most trusted first.

Trust runs from -1 (distrusted) through 0 (nothing known) to +1. Each daemon
computes its own, EigenTrust-style: from its own ratings of sessions, and from
the ratings of peers it trusts, in proportion to how much it trusts them,
starting at itself and at the peers you vouch for with 'peerctl trust add'.
Ratings by peers nobody you trust vouches for count for nothing, so a swarm of
fresh identities praising each other gains nothing. Find ranks results by
relevance × (1+trust)/2; the policy's min_trust declines peers trusted less.

Exit status: 0, or 1 when the list is empty; 2 on an error.`,
		Example: `  peerctl trust
  peerctl trust 12D3KooW...
  peerctl trust why 12D3KooW...
  peerctl trust add 12D3KooW...              # vouch for a peer you know
  peerctl trust add 12D3KooW... --weight -1  # distrust it
  peerctl trust remove 12D3KooW...`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if len(args) == 1 {
					ts, err := c.Trust(ctx, args[0])
					if err != nil {
						return err
					}
					if a.jsonOut() {
						return a.printJSON(ts)
					}
					return a.printTrust(ts, noTrunc)
				}
				all, err := c.TrustScores(ctx, limit)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					err = a.printJSON(all)
				} else if len(all) > 0 {
					rows := make([][]string, 0, len(all))
					for _, ts := range all {
						anchor := ""
						if ts.Anchor != 0 {
							anchor = formatTrust(ts.Anchor)
						}
						rows = append(rows, []string{ids(ts.Peer, noTrunc), formatTrust(ts.Value), strconv.Itoa(ts.Evidence), anchor})
					}
					err = a.printTable([]string{"PEER", "TRUST", "EVIDENCE", "ANCHOR"}, rows)
				}
				if err != nil {
					return err
				}
				if len(all) == 0 {
					a.note("no evidence about any peer yet: rate sessions, or vouch for peers with 'peerctl trust add'")
					return exitError{code: ExitNone}
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many peers (0: all)")
	a.addNoTrunc(cmd, &noTrunc)
	cmd.AddCommand(a.trustAddCommand(), a.trustRemoveCommand(), a.trustWhyCommand())
	return cmd
}

func (a *app) printTrust(ts client.TrustScore, noTrunc bool) error {
	rows := [][]string{
		{"peer", ts.Peer},
		{"trust", formatTrust(ts.Value)},
		{"evidence", fmt.Sprintf("%d ratings from trusted raters", ts.Evidence)},
		{"mass", fmt.Sprintf("positive %.4f, negative %.4f", ts.Positive, ts.Negative)},
	}
	if ts.Anchor != 0 {
		rows = append(rows, []string{"anchor", formatTrust(ts.Anchor) + " (set with peerctl trust add)"})
	}
	for i, c := range ts.Contributors {
		label := ""
		if i == 0 {
			label = "contributors"
		}
		rows = append(rows, []string{label, fmt.Sprintf("%s rated %s over %s (its trust %.4f): weight %+.2f",
			ids(c.Rater, noTrunc), formatTrust(c.Sum), sessions(c.Count), c.RaterTrust, c.Weight)})
	}
	return a.printRows(rows)
}

func (a *app) trustAddCommand() *cobra.Command {
	var weight float64
	cmd := &cobra.Command{
		Use:   "add PEER [--weight W]",
		Short: "Vouch for a peer, or with a negative weight distrust it",
		Long: `Vouch for PEER: trust starts at it as well as at this daemon, so its ratings
count here as your own do, in proportion to W (0 < W <= 1). A negative W
(-1 <= W < 0) distrusts PEER instead: its ratings count for nothing and its
trust is at most W. The anchor persists; 'peerctl trust remove' drops it.`,
		Args: exactArgs(1, "the peer ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if weight == 0 || weight < -1 || weight > 1 {
				return usageErrorf("--weight %v: want a value in -1…1 other than 0 (use 'peerctl trust remove' to drop an anchor)", weight)
			}
			return a.setTrust(cmd, args[0], weight)
		},
	}
	cmd.Flags().Float64Var(&weight, "weight", 1, "how much to vouch for the peer, -1…1; negative distrusts")
	return cmd
}

func (a *app) trustRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove PEER",
		Short: "Drop the anchor 'peerctl trust add' set for a peer",
		Args:  exactArgs(1, "the peer ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.setTrust(cmd, args[0], 0)
		},
	}
}

func (a *app) setTrust(cmd *cobra.Command, p string, weight float64) error {
	return a.call(cmd, func(ctx context.Context, c *client.Client) error {
		if err := c.SetTrust(ctx, p, weight); err != nil {
			return err
		}
		ts, err := c.Trust(ctx, p)
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(ts)
		}
		_, err = fmt.Fprintf(a.stdout, "trust in %s is now %s\n", ts.Peer, formatTrust(ts.Value))
		return err
	})
}

func (a *app) trustWhyCommand() *cobra.Command {
	var (
		depth, width int
		noTrunc      bool
	)
	cmd := &cobra.Command{
		Use:   "why PEER",
		Short: "Explain a peer's trust as the chain of evidence behind it",
		Long: `Explain this daemon's trust in PEER: who rated it and how, with what weight,
and, for each rater, how it earned the trust that makes its word count here,
back to this daemon and the peers you vouched for. Cycles are cut.`,
		Args: exactArgs(1, "the peer ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				x, err := c.TrustWhy(ctx, args[0], depth, width)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(x)
				}
				var b strings.Builder
				writeWhy(&b, x, "", noTrunc)
				_, err = fmt.Fprint(a.stdout, b.String())
				return err
			})
		},
	}
	cmd.Flags().IntVar(&depth, "depth", 3, "levels of raters to follow")
	cmd.Flags().IntVar(&width, "width", 5, "raters to show at each level")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

// writeWhy writes an explanation as an indented tree: the peer's trust,
// then each rater's opinion of it, under which how that rater is trusted.
func writeWhy(b *strings.Builder, x client.TrustExplanation, indent string, noTrunc bool) {
	fmt.Fprintf(b, "%s  trust %s", ids(x.Peer, noTrunc), formatTrust(x.Value))
	switch {
	case x.Self:
		b.WriteString("  (this daemon: where trust starts)")
	case x.Anchor != 0:
		fmt.Fprintf(b, "  (you vouched %s)", formatTrust(x.Anchor))
	}
	switch x.Evidence {
	case 0:
	case 1:
		b.WriteString("  1 rating")
	default:
		fmt.Fprintf(b, "  %d ratings", x.Evidence)
	}
	if x.Cut == "cycle" {
		b.WriteString("  (already above)")
	}
	b.WriteString("\n")
	for i, l := range x.Raters {
		branch, next := "├─ ", "│  "
		if i == len(x.Raters)-1 && x.Omitted == 0 {
			branch, next = "└─ ", "   "
		}
		fmt.Fprintf(b, "%s%srated %s over %s, weight %+.2f, by ", indent, branch, formatTrust(l.Sum), sessions(l.Count), l.Weight)
		writeWhy(b, l.Rater, indent+next, noTrunc)
	}
	if x.Omitted > 0 {
		fmt.Fprintf(b, "%s└─ and %d more\n", indent, x.Omitted)
	}
}
