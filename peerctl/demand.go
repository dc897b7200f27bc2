package peerctl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
)

// maxLineageDepth mirrors the daemon's cap on a lineage walk's depth.
const maxLineageDepth = 10

// defaultLineageTimeout bounds a lineage walk unless --timeout says otherwise.
const defaultLineageTimeout = 30 * time.Second

func (a *app) lineageCommand() *cobra.Command {
	var (
		depth   int
		timeout time.Duration
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "lineage ID",
		Short: "Show what a resource builds on and what builds on it",
		Long: `Walk the lineage of a resource: up through the resources it derives from
(its derived_from, and theirs), marked ↑, and down through the resources
that derive from it (a find of derived:ID, and so on), marked ↓, each up
to --depth levels. A source no provider answers for is shown as missing.

With -o json, the tree is one JSON object: resource, provider, missing,
sources and derivatives, nested.`,
		Example: `  peerctl lineage bafk...
  peerctl lineage bafk... --depth 5 -o json`,
		Args:              exactArgs(1, "the resource ID"),
		ValidArgsFunction: a.completeOwnIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if depth < 0 || depth > maxLineageDepth {
				return usageErrorf("--depth %d: want 1 to %d (0: the daemon's default, 3)", depth, maxLineageDepth)
			}
			if timeout <= 0 {
				return usageErrorf("--timeout %v: want a positive duration", timeout)
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+networkSlack)
			defer cancel()
			root, err := c.Lineage(ctx, args[0], client.LineageOptions{Depth: depth, Timeout: timeout})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(root)
			}
			return a.printLineage(root, noTrunc)
		},
	}
	cmd.Flags().IntVar(&depth, "depth", 0, "levels to walk up and down (0: the daemon's default, 3; at most 10)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultLineageTimeout, "stop walking after this long")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

// printLineage writes the tree: the root, then its sources (↑) and
// derivatives (↓), each level indented two more spaces.
func (a *app) printLineage(root client.LineageNode, noTrunc bool) error {
	var b strings.Builder
	b.WriteString(lineageLine(root, noTrunc) + "\n")
	var walk func(nodes []client.LineageNode, mark string, level int, up bool)
	walk = func(nodes []client.LineageNode, mark string, level int, up bool) {
		for _, n := range nodes {
			b.WriteString(strings.Repeat("  ", level) + mark + " " + lineageLine(n, noTrunc) + "\n")
			if up {
				walk(n.Sources, mark, level+1, up)
			} else {
				walk(n.Derivatives, mark, level+1, up)
			}
		}
	}
	walk(root.Sources, "↑", 1, true)
	walk(root.Derivatives, "↓", 1, false)
	_, err := fmt.Fprint(a.stdout, b.String())
	return err
}

func lineageLine(n client.LineageNode, noTrunc bool) string {
	if n.Missing {
		return ids(n.Resource.ID, noTrunc) + "  (missing: no provider answered)"
	}
	name := n.Resource.Name
	if !noTrunc {
		name = truncate(name, maxNameWidth)
	}
	s := fmt.Sprintf("%s  %s  %s", ids(n.Resource.ID, noTrunc), n.Resource.Kind, name)
	if n.Provider != "" {
		s += "  (" + ids(n.Provider, noTrunc) + ")"
	}
	return sanitize(s)
}

func (a *app) demandCommand() *cobra.Command {
	var (
		since   string
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "demand",
		Short: "Show the demand the daemon has seen",
		Long: `Show what the daemon has counted, locally, of the demand it saw: the
query terms other peers asked it most, the terms of your own finds, your
queries that found nothing anywhere (unmet demand), and for each of your
resources how often it was found, requested and granted, with the
conversion from one to the next.

Of other peers' queries only per-term counts are kept, unless the daemon's
config sets record_queries = true. Counts are hourly for the last 7 days,
plus totals since counting began.`,
		Example: `  peerctl demand
  peerctl demand --since 24h
  peerctl demand --since 7d -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := parseSince(since)
			if err != nil {
				return usageErrorf("--since %q: %v", since, err)
			}
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				rep, err := c.Demand(ctx, d)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(rep)
				}
				return a.printDemand(rep, d, strings.TrimSpace(since), noTrunc)
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "count only the last D, such as 24h, 90m or 7d (default: everything kept)")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

// parseSince reads a window: a Go duration (24h, 90m) or a number of days
// (7d). Empty or 0 means everything kept.
func parseSince(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("want a duration such as 24h, 90m or 7d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a duration such as 24h, 90m or 7d")
	}
	return d, nil
}

// percent shows part of whole as a percentage, or "-" when whole is 0.
func percent(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}

func (a *app) printDemand(d client.Demand, since time.Duration, sinceFlag string, noTrunc bool) error {
	var head string
	switch {
	case since > 0 && !d.Since.IsZero():
		head = fmt.Sprintf("Demand since %s (last %s)", d.Since.Local().Format("2006-01-02 15:04"), sinceFlag)
	case !d.Since.IsZero():
		head = fmt.Sprintf("Demand since %s (everything kept)", d.Since.Local().Format("2006-01-02 15:04"))
	default:
		head = "Demand"
	}
	p := func(format string, args ...any) error {
		_, err := fmt.Fprintf(a.stdout, format, args...)
		return err
	}
	if err := p("%s\n\nfinds run       %d (%d unmet, %s)\nfinds served    %d\nconnects        %d requested, %d granted\n",
		head, d.FindsRun, d.FindsUnmet, percent(d.FindsUnmet, d.FindsRun), d.FindsServed, d.ConnectsRequested, d.ConnectsGranted); err != nil {
		return err
	}
	terms := func(title, col string, cs []client.TermCount, results bool) error {
		if err := p("\n%s\n", title); err != nil {
			return err
		}
		if len(cs) == 0 {
			return p("  (none)\n")
		}
		header := []string{"  " + col, "FINDS"}
		if results {
			header = append(header, "RESULTS")
		}
		rows := make([][]string, 0, len(cs))
		for _, c := range cs {
			t := c.Term
			if !noTrunc {
				t = truncate(t, 60)
			}
			row := []string{"  " + t, strconv.FormatInt(c.Count, 10)}
			if results {
				row = append(row, strconv.FormatInt(c.Results, 10))
			}
			rows = append(rows, row)
		}
		return a.printTable(header, rows)
	}
	if err := terms("Top terms others asked (finds served)", "TERM", d.TopServedTerms, true); err != nil {
		return err
	}
	if len(d.TopServedQueries) > 0 { // only with record_queries
		if err := terms("Top queries others asked (record_queries is on)", "QUERY", d.TopServedQueries, true); err != nil {
			return err
		}
	}
	if err := terms("Top terms of your finds", "TERM", d.TopRunTerms, true); err != nil {
		return err
	}
	if err := terms("Unmet demand (your finds that found nothing)", "QUERY", d.Unmet, false); err != nil {
		return err
	}
	if err := p("\nYour resources\n"); err != nil {
		return err
	}
	var found, requested, granted int64
	if len(d.Resources) == 0 {
		if err := p("  (none)\n"); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(d.Resources))
		for _, r := range d.Resources {
			found += r.Found
			requested += r.Requested
			granted += r.Granted
			name := r.Name
			if !noTrunc {
				name = truncate(name, maxNameWidth)
			}
			if name == "" {
				name = "(withdrawn)"
			}
			rows = append(rows, []string{"  " + ids(r.ID, noTrunc), name, strconv.FormatInt(r.Found, 10),
				strconv.FormatInt(r.Requested, 10), strconv.FormatInt(r.Granted, 10), strconv.FormatInt(r.Rated, 10)})
		}
		if err := a.printTable([]string{"  ID", "NAME", "FOUND", "REQUESTED", "GRANTED", "RATED"}, rows); err != nil {
			return err
		}
	}
	return p("\nConversion: found %d → requested %d (%s) → granted %d (%s)\n",
		found, requested, percent(requested, found), granted, percent(granted, requested))
}
