package peerctl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/peerctl"
	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

// shortTempDir is a temporary data directory whose socket path stays within
// the 108 bytes a unix socket path may have; t.TempDir's may not.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// daemon is a stand-in pulld: the real control API server over a
// controltest.Backend, in a data directory of its own.
type daemon struct {
	t   *testing.T
	dir string
	b   *controltest.Backend
}

func startDaemon(t *testing.T, b *controltest.Backend) *daemon {
	t.Helper()
	dir := shortTempDir(t)
	controltest.StartAt(t, client.SocketPath(dir), b, control.Options{DataDir: dir, Version: "v0.0.0-test"})
	return &daemon{t: t, dir: dir, b: b}
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, dataDir string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if dataDir != "" {
		args = append([]string{"--data", dataDir}, args...)
	}
	code := peerctl.Run(context.Background(), args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func (d *daemon) run(args ...string) result {
	d.t.Helper()
	return run(d.t, d.dir, args...)
}

// ok runs a command that must succeed and returns its stdout.
func (d *daemon) ok(args ...string) string {
	d.t.Helper()
	r := d.run(args...)
	if r.code != 0 || r.stderr != "" {
		d.t.Fatalf("peerctl %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// jsonLines decodes each line of NDJSON output into a map.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		objs = append(objs, m)
	}
	return objs
}

func mustAddr(t *testing.T, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNoDaemon(t *testing.T) {
	dir := shortTempDir(t)
	want := fmt.Sprintf("peerctl: no pulld running at %s (socket %s): start one with 'pulld run --data %s'\n",
		dir, filepath.Join(dir, "pulld.sock"), dir)
	for _, args := range [][]string{
		{"status"},
		{"peers"},
		{"ls"},
		{"advertise", "--kind", "skill", "--name", "x"},
		{"withdraw", "bafkreiid"},
		{"find", "kind:compute"},
		{"connect", "bafkreiid"},
		{"requests"},
		{"approve", "s1"},
		{"decline", "s1", "--reason", "busy"},
		{"connect", "bafkreiid", "--forward", "9000"},
		{"forward", "s1"},
		{"forward", "s1", "9000"},
		{"forwards"},
		{"close", "s1"},
		{"sessions"},
		{"revoke", "s1"},
		{"advertise", "--kind", "service", "--name", "x", "--service", "127.0.0.1:8080"},
		{"-o", "json", "status"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, dir, args...)
			if r.code != 2 || r.stderr != want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and stderr %q", r.code, r.stdout, r.stderr, want)
			}
		})
	}
}

func TestDataDirDefault(t *testing.T) {
	env := shortTempDir(t)
	t.Setenv(peerctl.EnvData, env)
	if r := run(t, "", "status"); !strings.Contains(r.stderr, "no pulld running at "+env+" ") {
		t.Errorf("with $%s set: %q; want it to name %s", peerctl.EnvData, r.stderr, env)
	}
	home := shortTempDir(t)
	t.Setenv(peerctl.EnvData, "")
	t.Setenv("HOME", home)
	if r := run(t, "", "status"); !strings.Contains(r.stderr, "no pulld running at "+filepath.Join(home, ".pullnet")+" ") {
		t.Errorf("without $%s: %q; want it to name ~/.pullnet", peerctl.EnvData, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := shortTempDir(t) // no daemon: usage errors come first
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "peerctl" (see 'peerctl --help')`},
		{[]string{"status", "--bogus"}, `unknown flag: --bogus (see 'peerctl status --help')`},
		{[]string{"-o", "yaml", "status"}, `--output "yaml": want text or json (see 'peerctl status --help')`},
		{[]string{"status", "extra"}, `status takes no arguments, got "extra" (see 'peerctl status --help')`},
		{[]string{"withdraw"}, `withdraw: missing the resource ID (see 'peerctl withdraw --help')`},
		{[]string{"find"}, `find: missing the QUERY (see 'peerctl find --help')`},
		{[]string{"find", "--limit", "-1", "x"}, `--limit -1: want 0 (the daemon's default) or more (see 'peerctl find --help')`},
		{[]string{"find", "--timeout", "0s", "x"}, `--timeout 0s: want a positive duration (see 'peerctl find --help')`},
		{[]string{"find", "--timeout", "soon", "x"}, `invalid argument "soon" for "--timeout" flag`},
		{[]string{"connect"}, `connect: missing the resource ID (see 'peerctl connect --help')`},
		{[]string{"approve", "a", "b"}, `approve takes only the request's SESSION; unexpected "b"`},
		{[]string{"advertise", "--kind", "skill"}, `advertise needs --kind and --name, or -f FILE (see 'peerctl advertise --help')`},
		{[]string{"advertise", "--kind", "skill", "--name", "x", "--attr", "novalue"}, `--attr "novalue": want KEY=VALUE`},
		{[]string{"advertise", "--kind", "skill", "--name", "x", "--access", "a@b"}, `--access needs --access-type`},
		{[]string{"advertise", "--kind", "skill", "--name", "x", "--expires", "-1h"}, `--expires: "-1h": want a positive duration`},
		{[]string{"advertise", "--kind", "skill", "--name", "x", "--expires", "tomorrow"}, `--expires: "tomorrow": want a duration`},
		{[]string{"advertise", "-f", "r.json", "--name", "x"}, `-f cannot be combined with --name`},
		{[]string{"advertise", "-f", "r.yaml"}, `r.yaml: unknown format: name the file .json or .toml`},
		{[]string{"advertise", "--kind", "service", "--name", "x", "--service", "127.0.0.1:8080", "--access-type", "tcp"}, `--service cannot be combined with --access-type`},
		{[]string{"advertise", "--kind", "service", "--name", "x", "--access", "127.0.0.1:8080", "--service", "127.0.0.1:8080"}, `--service cannot be combined with --access`},
		{[]string{"advertise", "--kind", "service", "--name", "x", "--service", "8080"}, `--service "8080": want HOST:PORT, such as 127.0.0.1:8080`},
		{[]string{"advertise", "--kind", "service", "--name", "x", "--service", "localhost:0"}, `--service "localhost:0": port "0" is not a number from 1 to 65535`},
		{[]string{"advertise", "-f", "r.json", "--service", "127.0.0.1:8080"}, `-f cannot be combined with --service`},
		{[]string{"advertise", "--id", "bafkreiid", "--service", "127.0.0.1:8080", "--access-type", "url"}, `--service cannot be combined with --access-type`},
		{[]string{"connect", "x", "--forward", "http"}, `--forward "http": port "http" is not a number from 0 to 65535`},
		{[]string{"connect", "x", "--forward", "70000"}, `--forward "70000": port "70000" is not a number`},
		{[]string{"connect", "x", "--forward", ""}, `--forward want a port such as 9000`},
		{[]string{"connect", "x", "--forward", "::1"}, `--forward "::1": want a port such as 9000, or HOST:PORT`},
		{[]string{"forward"}, `forward: missing the SESSION`},
		{[]string{"forward", "s", "9000", "extra"}, `forward takes only SESSION and ADDR; unexpected "extra"`},
		{[]string{"forward", "s", "localhost:-1"}, `forward: ADDR "localhost:-1": port "-1" is not a number`},
		{[]string{"forwards", "x"}, `forwards takes no arguments, got "x"`},
		{[]string{"close"}, `close: missing the forward's SESSION`},
		{[]string{"revoke"}, `revoke: missing the SESSION`},
		{[]string{"revoke", "a", "b"}, `revoke takes only the SESSION; unexpected "b"`},
		{[]string{"sessions", "x"}, `sessions takes no arguments, got "x"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, dir, tc.args...)
			if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "peerctl: ") ||
				!strings.Contains(r.stderr, tc.want) || !strings.HasSuffix(r.stderr, " --help')\n") ||
				strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line with %q and a hint to --help", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	r := run(t, "", "find", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Exit status: 0 if something matched") || r.stderr != "" {
		t.Errorf("find --help: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "bash completion") {
		t.Errorf("completion bash: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestStatus(t *testing.T) {
	id := controltest.PeerID.String()
	relay := "/ip4/10.0.0.9/tcp/4001/p2p/" + controltest.PeerID3.String() + "/p2p-circuit/p2p/" + id
	d := startDaemon(t, &controltest.Backend{
		ListenAddrs: []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/4001"), mustAddr(t, "/ip6/::1/tcp/4001")},
		Connected:   []node.PeerInfo{{ID: controltest.PeerID2}, {ID: controltest.PeerID3}},
		Reach:       "private",
		Relays:      []ma.Multiaddr{mustAddr(t, relay)},
	})

	out := d.ok("-o", "json", "status")
	objs := jsonLines(t, out)
	if len(objs) != 1 {
		t.Fatalf("status -o json printed %d objects; want 1", len(objs))
	}
	st := objs[0]
	wantAddrs := []any{"/ip4/127.0.0.1/tcp/4001/p2p/" + id, "/ip6/::1/tcp/4001/p2p/" + id}
	if st["peer_id"] != id || fmt.Sprint(st["addrs"]) != fmt.Sprint(wantAddrs) || st["peers"] != 2.0 ||
		st["resources"] != 0.0 || st["policy"] != "open" || st["version"] != "v0.0.0-test" || st["data_dir"] != d.dir ||
		st["reachability"] != "private" || fmt.Sprint(st["relay_addrs"]) != fmt.Sprint([]any{relay}) {
		t.Errorf("status -o json = %s", out)
	}

	want := fmt.Sprintf(`peer id       %s
addrs         /ip4/127.0.0.1/tcp/4001/p2p/%s
              /ip6/::1/tcp/4001/p2p/%s
reachability  private
relay addrs   %s
peers         2
resources     0
policy        open
version       v0.0.0-test
data dir      %s
`, id, id, id, relay, d.dir)
	if got := d.ok("status"); got != want {
		t.Errorf("status:\n%s\nwant:\n%s", got, want)
	}

	// A daemon without addresses or relays says so.
	bare := startDaemon(t, &controltest.Backend{})
	got := bare.ok("status")
	for _, line := range []string{"\naddrs         -\n", "\nreachability  unknown\n", "\nrelay addrs   -\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("status of a bare daemon lacks %q:\n%s", line, got)
		}
	}
}

func TestPeers(t *testing.T) {
	d := startDaemon(t, &controltest.Backend{Connected: []node.PeerInfo{
		{ID: controltest.PeerID2, Addrs: []ma.Multiaddr{mustAddr(t, "/ip4/10.0.0.2/tcp/4001")}, Direction: network.DirOutbound, Latency: 12300 * time.Microsecond, Transport: "tcp"},
		{ID: controltest.PeerID3, Direction: network.DirInbound, Relayed: true, Transport: "relay"},
	}})
	want := `PEER         DIRECTION  PATH     TRANSPORT  LATENCY  ADDR
12D3…uVF6wv  outbound   direct   tcp        12.3ms   /ip4/10.0.0.2/tcp/4001
12D3…hNQdmr  inbound    relayed  relay      -        -
`
	// shortID keeps the first four and last six characters.
	id2, id3 := controltest.PeerID2.String(), controltest.PeerID3.String()
	want = strings.NewReplacer("12D3…uVF6wv", "12D3…"+id2[len(id2)-6:], "12D3…hNQdmr", "12D3…"+id3[len(id3)-6:]).Replace(want)
	if got := d.ok("peers"); got != want {
		t.Errorf("peers:\n%s\nwant:\n%s", got, want)
	}
	if got := d.ok("peers", "--no-trunc"); !strings.Contains(got, id2) {
		t.Errorf("peers --no-trunc does not show %s:\n%s", id2, got)
	}

	var peers []map[string]any
	if err := json.Unmarshal([]byte(d.ok("peers", "-o", "json")), &peers); err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 || peers[0]["peer_id"] != id2 || peers[0]["direction"] != "outbound" || peers[0]["latency_ms"] != 12.3 ||
		peers[0]["relayed"] != false || peers[0]["transport"] != "tcp" || peers[1]["relayed"] != true || peers[1]["transport"] != "relay" {
		t.Errorf("peers -o json = %v", peers)
	}
}

func TestEmptyListsAreJSONArrays(t *testing.T) {
	d := startDaemon(t, &controltest.Backend{})
	for _, cmd := range []string{"peers", "ls", "requests", "forwards", "sessions"} {
		if got := d.ok("-o", "json", cmd); got != "[]\n" {
			t.Errorf("%s -o json = %q; want []", cmd, got)
		}
		if got := d.ok(cmd); got != "" {
			t.Errorf("%s = %q; want nothing", cmd, got)
		}
	}
}

func TestAdvertiseFlags(t *testing.T) {
	b := &controltest.Backend{}
	d := startDaemon(t, b)
	base := resource.NewID("someone", "base")
	out := d.ok("-o", "json", "advertise", "--kind", "compute", "--name", "A100 box", "--desc", "two GPUs",
		"--tag", "gpu", "--tag", "cuda,nvidia", "--attr", "gpu.count=2", "--attr", "note=a=b",
		"--access-type", "tcp", "--access", "127.0.0.1:8080", "--derived-from", base,
		"--expires", "720h", "--handle", "gpu-box")
	var res struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("advertise -o json = %q: %v", out, err)
	}
	own := b.Resources()
	if len(own) != 1 {
		t.Fatalf("daemon has %d resources; want 1", len(own))
	}
	r := own[0]
	if res.ID != r.ID || res.Seq != 1 {
		t.Errorf("printed %+v; want id %s seq 1", res, r.ID)
	}
	if r.Kind != "compute" || r.Name != "A100 box" || r.Description != "two GPUs" ||
		!slices.Equal(r.Tags, []string{"cuda", "gpu", "nvidia"}) ||
		r.Attrs["gpu.count"] != "2" || r.Attrs["note"] != "a=b" ||
		r.Access != (resource.Access{Type: "tcp", Value: "127.0.0.1:8080"}) ||
		!slices.Equal(r.DerivedFrom, []string{base}) || r.Handle != "gpu-box" {
		t.Errorf("advertised %+v", r)
	}
	if until := time.Until(r.Expires); until < 719*time.Hour || until > 720*time.Hour {
		t.Errorf("expires in %v; want 720h", until)
	}

	// Editing changes only what is given.
	got := d.ok("advertise", "--id", r.ID, "--name", "A100 box, more RAM", "--expires", "never")
	if want := fmt.Sprintf("advertised %s (seq 2)\n", r.ID); got != want {
		t.Errorf("edit printed %q; want %q", got, want)
	}
	e := b.Resources()[0]
	if e.Name != "A100 box, more RAM" || !slices.Equal(e.Tags, r.Tags) || e.Attrs["gpu.count"] != "2" ||
		e.Access != r.Access || !e.Expires.IsZero() || e.Seq != 2 {
		t.Errorf("edited %+v", e)
	}

	nope := resource.NewID("x", "y")
	if r := d.run("advertise", "--id", nope, "--name", "x"); r.code != 2 || !strings.Contains(r.stderr, "no resource "+nope) {
		t.Errorf("editing an unknown resource: exit %d, stderr %q", r.code, r.stderr)
	}
	// The daemon's validation comes through as one line without a code
	// prefix.
	r2 := d.run("advertise", "--kind", "Not A Kind!", "--name", "x")
	if r2.code != 2 || !strings.HasPrefix(r2.stderr, "peerctl: invalid argument: kind") || strings.Contains(r2.stderr, "invalid_argument") {
		t.Errorf("bad kind: exit %d, stderr %q", r2.code, r2.stderr)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdvertiseFile(t *testing.T) {
	b := &controltest.Backend{}
	d := startDaemon(t, b)
	dir := t.TempDir()
	want := resource.Resource{
		Kind:        "model",
		Name:        "tiny llama",
		Description: "a small model",
		Tags:        []string{"llm", "small"},
		Attrs:       map[string]string{"params": "1.1e9", "gpu.count": "1", "gpu.vram": "24", "quantized": "true"},
		Access:      resource.Access{Type: "url", Value: "https://example.org/llama"},
		Expires:     time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	files := map[string]string{
		"model.json": `{
  "kind": "model",
  "name": "tiny llama",
  "description": "a small model",
  "tags": ["llm", "small"],
  "attrs": {"params": "1.1e9", "gpu": {"count": 1, "vram": 24}, "quantized": true},
  "access": {"type": "url", "value": "https://example.org/llama"},
  "expires": "2030-01-02T03:04:05Z"
}`,
		"model.toml": `kind = "model"
name = "tiny llama"
description = "a small model"
tags = ["llm", "small"]
expires = 2030-01-02T03:04:05Z

[attrs]
params = "1.1e9"
gpu.count = 1
gpu.vram = 24
quantized = true

[access]
type = "url"
value = "https://example.org/llama"
`,
	}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, dir, name, content)
			out := d.ok("advertise", "-f", path)
			own := b.Resources()
			got := own[len(own)-1]
			if !strings.HasPrefix(out, "advertised "+got.ID+" (seq 1)") {
				t.Errorf("printed %q", out)
			}
			got.ID, got.Owner, got.Handle, got.Seq, got.Updated = "", "", "", 0, time.Time{}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Errorf("advertised\n %+v\nwant\n %+v", got, want)
			}
		})
	}

	// The output of ls -o json can be edited and advertised again.
	var listed []resource.Resource
	if err := json.Unmarshal([]byte(d.ok("ls", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	listed[0].Name = "tiny llama v2"
	edited, err := json.Marshal(listed[0])
	if err != nil {
		t.Fatal(err)
	}
	d.ok("advertise", "-f", writeFile(t, dir, "edit.json", string(edited)))
	if r := b.Resources()[0]; r.Name != "tiny llama v2" || r.Seq != 2 {
		t.Errorf("after editing ls output: %+v", r)
	}
}

func TestAdvertiseFileErrors(t *testing.T) {
	dir := t.TempDir()
	big := writeFile(t, dir, "big.json", `{"kind": "x", "name": "`+strings.Repeat("y", 1<<20)+`"}`)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"unknown.json", `{"kind": "x", "name": "y", "colour": "red"}`, `unknown.json: unknown field "colour"`},
		{"unknown.toml", "kind = \"x\"\nname = \"y\"\ncolour = \"red\"\n", `unknown.toml: unknown field "colour" (line 3)`},
		{"nested.toml", "kind = \"x\"\n[access]\nkind = \"y\"\n", `nested.toml: unknown field "access.kind" (line 3)`},
		{"syntax.json", "{\n\"kind\": \"x\",\n}", `syntax.json: line 3: invalid character '}'`},
		{"syntax.toml", "kind = \n", `syntax.toml: line 1:`},
		{"type.json", `{"kind": 1}`, `type.json: field kind: want string, got number`},
		{"two.json", `{"kind": "x"} {"kind": "y"}`, `two.json: more than one JSON value`},
		{"attr.json", `{"attrs": {"list": [1, 2]}}`, `attr.json: attribute "list": want a string, number or boolean`},
		{"expires.json", `{"expires": "someday"}`, `expires.json: expires: "someday": want a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, tc.name, tc.content)
			// No daemon: a bad file is reported before any call.
			r := run(t, dir, "advertise", "-f", path)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	if r := run(t, dir, "advertise", "-f", big); r.code != 2 || !strings.Contains(r.stderr, "big.json: larger than 1048576 bytes") {
		t.Errorf("big file: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, dir, "advertise", "-f", filepath.Join(dir, "missing.json")); r.code != 2 || !strings.Contains(r.stderr, "missing.json: no such file") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLsAndWithdraw(t *testing.T) {
	b := &controltest.Backend{}
	d := startDaemon(t, b)
	for _, r := range []resource.Resource{
		{Kind: "skill", Name: "go reviews", Tags: []string{"go", "review"}},
		{Kind: "person", Name: strings.Repeat("long name ", 10)},
	} {
		if _, err := b.Advertise(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	own := b.Resources()
	want := fmt.Sprintf(`ID           KIND    NAME                                      TAGS       SEQ
%s  skill   go reviews                                go,review  1
%s  person  long name long name long name long name…             1
`, shortIDOf(own[0].ID), shortIDOf(own[1].ID))
	if got := d.ok("ls"); got != want {
		t.Errorf("ls:\n%s\nwant:\n%s", got, want)
	}
	if got := d.ok("ls", "--no-trunc"); !strings.Contains(got, own[0].ID) || !strings.Contains(got, own[1].Name) {
		t.Errorf("ls --no-trunc:\n%s", got)
	}

	var listed []resource.Resource
	if err := json.Unmarshal([]byte(d.ok("-o", "json", "ls")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].ID != own[0].ID || listed[0].Owner != controltest.PeerID.String() {
		t.Errorf("ls -o json = %+v", listed)
	}

	if got := d.ok("withdraw", own[0].ID); got != "withdrew "+own[0].ID+"\n" {
		t.Errorf("withdraw printed %q", got)
	}
	if got := d.ok("-o", "json", "withdraw", own[1].ID); got != `{"id":"`+own[1].ID+`"}`+"\n" {
		t.Errorf("withdraw -o json printed %q", got)
	}
	r := d.run("withdraw", own[0].ID)
	if r.code != 2 || r.stderr != "peerctl: resource "+own[0].ID+": not found\n" {
		t.Errorf("withdrawing twice: exit %d, stderr %q", r.code, r.stderr)
	}
}

// shortIDOf is peerctl's abbreviation of an ID.
func shortIDOf(id string) string { return id[:4] + "…" + id[len(id)-6:] }

func findBackend() *controltest.Backend {
	res := func(kind, name string, elapsed time.Duration) node.Result {
		return node.Result{
			Resource: resource.Resource{ID: resource.NewID(controltest.PeerID2.String(), name), Owner: controltest.PeerID2.String(), Kind: kind, Name: name, Tags: []string{"gpu"}},
			Provider: controltest.PeerID2,
			Elapsed:  elapsed,
			Score:    0.9,
		}
	}
	return &controltest.Backend{Network: []node.Result{
		res("compute", "A100 box", 12*time.Millisecond),
		res("compute", "TPU pod \x1b[31mred\x1b[0m", 1250*time.Millisecond),
		res("dataset", "weather", time.Millisecond),
	}}
}

func TestFind(t *testing.T) {
	b := findBackend()
	d := startDaemon(t, b)
	p := shortIDOf(controltest.PeerID2.String())

	want := fmt.Sprintf(`ID           KIND        NAME                                      PROVIDER     TRUST  ELAPSED
%s  compute     A100 box                                  %s  0.00   12ms
%s  compute     TPU pod  [31mred [0m                      %s  0.00   1.25s
`, shortIDOf(b.Network[0].Resource.ID), p, shortIDOf(b.Network[1].Resource.ID), p)
	r := d.run("find", "kind:compute", "tag:gpu")
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("find: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}

	out := d.ok("find", "-o", "json", "--limit", "1", "kind:compute")
	objs := jsonLines(t, out)
	if len(objs) != 1 {
		t.Fatalf("find --limit 1 -o json printed %d lines; want 1", len(objs))
	}
	o := objs[0]
	for _, k := range []string{"id", "provider", "addrs", "resource", "elapsed_ms", "score"} {
		if _, ok := o[k]; !ok {
			t.Errorf("result has no %q: %s", k, out)
		}
	}
	if o["id"] != b.Network[0].Resource.ID || o["provider"] != controltest.PeerID2.String() || o["elapsed_ms"] != 12.0 ||
		o["resource"].(map[string]any)["name"] != "A100 box" {
		t.Errorf("find -o json = %s", out)
	}

	// Like grep: nothing found is exit 1, an error exit 2.
	if r := d.run("find", "kind:nothing"); r.code != 1 || r.stdout != "" || r.stderr != "" {
		t.Errorf("find with no match: exit %d, stdout %q, stderr %q; want exit 1 and no output", r.code, r.stdout, r.stderr)
	}
	if r := d.run("find", "-o", "json", "kind:nothing"); r.code != 1 || r.stdout != "" {
		t.Errorf("find -o json with no match: exit %d, stdout %q; want exit 1 and no output", r.code, r.stdout)
	}
	r = d.run("find", `"unterminated`)
	if r.code != 2 || !strings.HasPrefix(r.stderr, "peerctl: invalid argument: query") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("bad query: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestFindStopsAtTimeout(t *testing.T) {
	b := &controltest.Backend{FindFunc: func(ctx context.Context, _ string, _ node.FindOptions) iter.Seq2[node.Result, error] {
		return func(yield func(node.Result, error) bool) {
			<-ctx.Done()
			yield(node.Result{}, ctx.Err())
		}
	}}
	d := startDaemon(t, b)
	start := time.Now()
	if r := d.run("find", "--timeout", "100ms", "x"); r.code != 1 || r.stderr != "" {
		t.Errorf("find that found nothing in time: exit %d, stderr %q; want exit 1", r.code, r.stderr)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("find --timeout 100ms took %v", el)
	}
}

func TestConnect(t *testing.T) {
	b := findBackend()
	b.Network[0].Resource.Access = resource.Access{Type: "tcp", Value: "127.0.0.1:8080"}
	b.ConnectFunc = func(ctx context.Context, id, message string) (node.Grant, error) {
		switch id {
		case b.Network[0].Resource.ID:
			return node.Grant{Granted: true, Session: "sess-1", Access: b.Network[0].Resource.Access, Provider: controltest.PeerID2, ResourceID: id}, nil
		case b.Network[1].Resource.ID:
			return node.Grant{Reason: "busy until " + message, Provider: controltest.PeerID2, ResourceID: id}, nil
		}
		return node.Grant{}, fmt.Errorf("resource %s: %w", id, node.ErrNotFound)
	}
	d := startDaemon(t, b)
	granted, declined := b.Network[0].Resource.ID, b.Network[1].Resource.ID

	if got := d.ok("connect", granted); got != "granted session sess-1 (access tcp 127.0.0.1:8080)\n" {
		t.Errorf("connect printed %q", got)
	}
	objs := jsonLines(t, d.ok("connect", "-o", "json", granted))
	want := map[string]any{
		"granted": true, "session": "sess-1", "reason": "",
		"access":   map[string]any{"type": "tcp", "value": "127.0.0.1:8080"},
		"provider": controltest.PeerID2.String(), "resource_id": granted, "forward": "",
	}
	if len(objs) != 1 || fmt.Sprint(objs[0]) != fmt.Sprint(want) {
		t.Errorf("connect -o json = %v; want %v", objs, want)
	}

	r := d.run("connect", declined, "--message", "monday")
	if r.code != 1 || r.stdout != "declined: busy until monday\n" || r.stderr != "" {
		t.Errorf("declined connect: exit %d, stdout %q, stderr %q; want exit 1", r.code, r.stdout, r.stderr)
	}
	r = d.run("connect", "-o", "json", declined)
	if objs := jsonLines(t, r.stdout); r.code != 1 || len(objs) != 1 || objs[0]["granted"] != false {
		t.Errorf("declined connect -o json: exit %d, stdout %q", r.code, r.stdout)
	}
	r = d.run("connect", "nope")
	if r.code != 2 || r.stderr != "peerctl: resource nope: not found\n" {
		t.Errorf("connect to an unknown resource: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRequests(t *testing.T) {
	b := &controltest.Backend{PolicyMode: node.PolicyManual}
	rid := resource.NewID(controltest.PeerID.String(), "svc")
	b.AddRequest(node.Request{Session: "s-1", ResourceID: rid, Consumer: controltest.PeerID3, Message: "please\nlet me in", Received: time.Now().Add(-90 * time.Second)})
	b.AddRequest(node.Request{Session: "s-2", ResourceID: rid, Consumer: controltest.PeerID3})
	d := startDaemon(t, b)

	got := d.ok("requests")
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SESSION") ||
		strings.Join(strings.Fields(lines[1])[:3], " ") != "s-1 "+shortIDOf(rid)+" "+shortIDOf(controltest.PeerID3.String()) ||
		strings.HasSuffix(lines[2], " ") ||
		!strings.Contains(lines[1], "please let me in") || !strings.Contains(lines[1], "1m3") {
		t.Errorf("requests:\n%s", got)
	}
	var reqs []map[string]any
	if err := json.Unmarshal([]byte(d.ok("-o", "json", "requests")), &reqs); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 || reqs[0]["session"] != "s-1" || reqs[0]["resource_id"] != rid ||
		reqs[0]["consumer"] != controltest.PeerID3.String() || reqs[0]["message"] != "please\nlet me in" || reqs[0]["received"] == "" {
		t.Errorf("requests -o json = %v", reqs)
	}

	if got := d.ok("approve", "s-1"); got != "approved s-1\n" {
		t.Errorf("approve printed %q", got)
	}
	if got := d.ok("-o", "json", "decline", "s-2", "--reason", "busy"); got != `{"session":"s-2"}`+"\n" {
		t.Errorf("decline -o json printed %q", got)
	}
	if b.Decision("s-1") != "approved" || b.Decision("s-2") != "declined: busy" {
		t.Errorf("decisions: %q, %q", b.Decision("s-1"), b.Decision("s-2"))
	}
	if r := d.run("approve", "s-1"); r.code != 2 || r.stderr != "peerctl: request s-1: not found\n" {
		t.Errorf("approving twice: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestInterrupt(t *testing.T) {
	entered := make(chan struct{})
	b := &controltest.Backend{FindFunc: func(ctx context.Context, _ string, _ node.FindOptions) iter.Seq2[node.Result, error] {
		return func(yield func(node.Result, error) bool) {
			close(entered)
			<-ctx.Done()
			yield(node.Result{}, ctx.Err())
		}
	}}
	d := startDaemon(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- peerctl.Run(ctx, []string{"--data", d.dir, "find", "--timeout", "1h", "x"}, &stdout, &stderr)
	}()
	<-entered
	cancel()
	if c := <-code; c != 2 || stderr.String() != "peerctl: interrupted\n" {
		t.Errorf("interrupted find: exit %d, stderr %q; want exit 2 and 'interrupted'", c, stderr.String())
	}
}
