package peerctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// Output formats.
const (
	outputText = "text"
	outputJSON = "json"
)

func (a *app) jsonOut() bool { return a.output == outputJSON }

// printJSON writes v as one line of JSON. Every JSON document peerctl
// prints is one line, so a stream of them is NDJSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// printTable writes rows under header in aligned columns.
func (a *app) printTable(header []string, rows [][]string) error {
	return a.printRows(append([][]string{header}, rows...))
}

// printRows writes rows in aligned columns. Cells are sanitized: much of
// what peerctl shows comes from other peers.
func (a *app) printRows(rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		writeRow(tw, r)
	}
	tw.Flush()
	// A row whose last cells are empty would end in padding.
	var out strings.Builder
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteString("\n")
	}
	if _, err := io.WriteString(a.stdout, out.String()); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func writeRow(w io.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		io.WriteString(w, sanitize(c))
	}
	io.WriteString(w, "\n")
}

// sanitize makes s safe to print on a terminal in one cell: control
// characters (escape sequences, tabs, newlines) from a peer's resource
// would otherwise rewrite the screen or break the columns.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
}

// shortIDLen is the length of an abbreviated ID in characters.
const shortIDLen = 4 + 1 + 6

// shortID abbreviates a peer or resource ID for a column: its first four
// characters, which tell a peer ID (12D3…) from a resource ID (bafk…), and
// its last six, which tell IDs apart. JSON output and --no-trunc keep IDs
// whole.
func shortID(id string) string {
	r := []rune(id)
	if len(r) <= shortIDLen {
		return id
	}
	return string(r[:4]) + "…" + string(r[len(r)-6:])
}

// truncate cuts s to at most n characters, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// pad left-aligns s in a column of n characters (not bytes).
func pad(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// formatMS shows milliseconds as a short duration: 850µs, 12.3ms, 1.25s.
func formatMS(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// formatAge shows how long ago t was, to the second.
func formatAge(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return max(now.Sub(t), 0).Round(time.Second).String()
}

// isTerminal reports whether w is a terminal. Progress and hints go to
// stderr only then, so scripts see nothing but results and errors.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// note writes a hint or progress line to stderr when it is a terminal.
func (a *app) note(format string, args ...any) {
	if isTerminal(a.stderr) {
		fmt.Fprintf(a.stderr, format+"\n", args...)
	}
}
