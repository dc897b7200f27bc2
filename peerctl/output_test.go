package peerctl

import (
	"testing"
	"time"
)

func TestShortID(t *testing.T) {
	for in, want := range map[string]string{
		"12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X":        "12D3…9HyQ6X",
		"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku": "bafk…quvyku",
		"s-1":          "s-1",
		"exactly11ch":  "exactly11ch",
		"twelve chars": "twel… chars",
	} {
		if got := shortID(in); got != want {
			t.Errorf("shortID(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestFormat(t *testing.T) {
	for ms, want := range map[float64]string{0: "-", 0.25: "250µs", 12.34: "12.3ms", 1234.5: "1.23s", 61000: "1m1s"} {
		if got := formatMS(ms); got != want {
			t.Errorf("formatMS(%v) = %q; want %q", ms, got, want)
		}
	}
	if got := truncate("abcdef", 4); got != "abc…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("abc", 4); got != "abc" {
		t.Errorf("truncate = %q", got)
	}
	if got := sanitize("a\tb\x1b[2Jc\n"); got != "a b [2Jc " {
		t.Errorf("sanitize = %q", got)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := formatAge(now.Add(-90*time.Second-400*time.Millisecond), now); got != "1m30s" {
		t.Errorf("formatAge = %q", got)
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"never":                     {},
		"90m":                       now.Add(90 * time.Minute),
		"2031-02-03T04:05:06Z":      time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC),
		"2031-02-03T06:05:06+02:00": time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC),
	} {
		got, err := parseExpiry(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0s", "-1h", "tomorrow", "2031-02-03"} {
		if _, err := parseExpiry(in, now); err == nil {
			t.Errorf("parseExpiry(%q) succeeded; want an error", in)
		}
	}
}
