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

func TestParseForwardAddr(t *testing.T) {
	for in, want := range map[string]string{
		"9000":           "127.0.0.1:9000",
		"0":              "127.0.0.1:0",
		" 9000 ":         "127.0.0.1:9000",
		"127.0.0.1:0":    "127.0.0.1:0",
		"localhost:9000": "localhost:9000",
		"0.0.0.0:9000":   "0.0.0.0:9000",
		":9000":          ":9000",
		"[::1]:0":        "[::1]:0",
	} {
		if got, err := parseForwardAddr(in); err != nil || got != want {
			t.Errorf("parseForwardAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "http", "65536", "-1", "+9000", "09000", "::1", "localhost", "localhost:", "host:http", "[::1]"} {
		if got, err := parseForwardAddr(in); err == nil {
			t.Errorf("parseForwardAddr(%q) = %q; want an error", in, got)
		}
	}
}

func TestFormatBytesAndUntil(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 10: "10 KiB",
		5 << 20: "5.0 MiB", 123 << 30: "123 GiB", 3 << 40: "3.0 TiB", 2000 << 50: "2000 PiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q; want %q", n, got, want)
		}
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		-time.Second: "expired", 0: "expired", 42 * time.Second: "in 42s",
		59*time.Minute + 50*time.Second: "in 1h0m", 23*time.Hour + 30*time.Minute: "in 23h30m", 90 * time.Minute: "in 1h30m",
	} {
		if got := formatUntil(now.Add(d), now); got != want {
			t.Errorf("formatUntil(now+%v) = %q; want %q", d, got, want)
		}
	}
	if got := formatUntil(time.Time{}, now); got != "-" {
		t.Errorf("formatUntil(zero) = %q", got)
	}
}
