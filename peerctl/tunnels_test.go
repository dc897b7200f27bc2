package peerctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

func TestAdvertiseService(t *testing.T) {
	b := &controltest.Backend{}
	d := startDaemon(t, b)
	d.ok("advertise", "--kind", "service", "--name", "inference API", "--service", "127.0.0.1:8080")
	r := b.Resources()[0]
	if r.Access != (resource.Access{Type: resource.AccessTCP, Value: "127.0.0.1:8080"}) {
		t.Errorf("--service set access %+v", r.Access)
	}
	// Editing with --service replaces any other access.
	d.ok("advertise", "--id", r.ID, "--service", "[::1]:9090")
	if got := b.Resources()[0].Access; got != (resource.Access{Type: resource.AccessTCP, Value: "[::1]:9090"}) {
		t.Errorf("edit with --service set access %+v", got)
	}

	dir := t.TempDir()
	for name, content := range map[string]string{
		"svc.json": `{"kind": "service", "name": "web", "service": "127.0.0.1:8081"}`,
		"svc.toml": "kind = \"service\"\nname = \"web\"\nservice = \"127.0.0.1:8081\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			d.ok("advertise", "-f", writeFile(t, dir, name, content))
			own := b.Resources()
			if got := own[len(own)-1].Access; got != (resource.Access{Type: resource.AccessTCP, Value: "127.0.0.1:8081"}) {
				t.Errorf("service in %s set access %+v", name, got)
			}
		})
	}

	for name, tc := range map[string]struct{ content, want string }{
		"both.json":    {`{"kind": "service", "name": "web", "service": "127.0.0.1:8081", "access": {"type": "tcp"}}`, "both.json: service and access are both set"},
		"both.toml":    {"kind = \"service\"\nname = \"web\"\nservice = \"127.0.0.1:8081\"\n[access]\nvalue = \"x\"\n", "both.toml: service and access are both set"},
		"badsvc.toml":  {"kind = \"service\"\nname = \"web\"\nservice = \"8081\"\n", `badsvc.toml: service "8081": want HOST:PORT`},
		"badport.json": {`{"kind": "service", "name": "web", "service": "h:99999"}`, `badport.json: service "h:99999": port "99999" is not a number from 1 to 65535`},
	} {
		t.Run(name, func(t *testing.T) {
			r := d.run("advertise", "-f", writeFile(t, dir, name, tc.content))
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

// tunnelBackend is a stand-in daemon whose network has a TCP service and a
// dataset.
func tunnelBackend() (b *controltest.Backend, svc, data string) {
	res := func(kind, name string, access resource.Access) node.Result {
		return node.Result{
			Resource: resource.Resource{ID: resource.NewID(controltest.PeerID2.String(), name), Kind: kind, Name: name, Access: access},
			Provider: controltest.PeerID2,
		}
	}
	b = &controltest.Backend{Network: []node.Result{
		res("service", "web", resource.Access{Type: resource.AccessTCP}),
		res("dataset", "weather", resource.Access{Type: resource.AccessURL, Value: "https://example.org/w"}),
	}}
	return b, b.Network[0].Resource.ID, b.Network[1].Resource.ID
}

func TestConnectForward(t *testing.T) {
	b, svc, data := tunnelBackend()
	d := startDaemon(t, b)

	// Without --forward, a TCP grant says how to get at the service.
	if got := d.ok("connect", svc); got != "granted session session-1 (a TCP service: 'peerctl forward session-1' opens a local port to it)\n" {
		t.Errorf("connect printed %q", got)
	}
	for _, tc := range []struct{ arg, listen string }{
		{"9000", "127.0.0.1:9000"},
		{"0", "127.0.0.1:40001"},
		{"127.0.0.1:0", "127.0.0.1:40002"},
		{"localhost:9001", "localhost:9001"},
		{"[::1]:9002", "[::1]:9002"},
	} {
		got := d.ok("connect", svc, "--forward", tc.arg)
		if !strings.HasPrefix(got, "granted session ") || !strings.HasSuffix(got, "; forwarding "+tc.listen+" → "+svc+"\n") {
			t.Errorf("connect --forward %s printed %q; want forwarding %s", tc.arg, got, tc.listen)
		}
	}
	objs := jsonLines(t, d.ok("-o", "json", "connect", svc, "--forward", "9003"))
	if len(objs) != 1 || objs[0]["forward"] != "127.0.0.1:9003" || objs[0]["granted"] != true || objs[0]["expires"] == nil {
		t.Errorf("connect --forward -o json = %v", objs)
	}
	exp, err := time.Parse(time.RFC3339, objs[0]["expires"].(string))
	if err != nil || time.Until(exp) < 50*time.Minute {
		t.Errorf("expires %v, %v; want in about an hour", objs[0]["expires"], err)
	}

	// The grant stands when its forward fails, and the message says how to
	// retry.
	r := d.run("connect", data, "--forward", "9004")
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "was granted, but its forward was not opened (open it with 'peerctl forward session-") ||
		strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("connect --forward to a dataset: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// A decline is exit 1 and opens nothing.
	b.ConnectFunc = func(ctx context.Context, id, _ string) (node.Grant, error) {
		return node.Grant{Reason: "busy", ResourceID: id, Provider: controltest.PeerID2}, nil
	}
	n := len(b.Forwards())
	if r := d.run("connect", svc, "--forward", "9005"); r.code != 1 || r.stdout != "declined: busy\n" || len(b.Forwards()) != n {
		t.Errorf("declined connect --forward: exit %d, stdout %q, %d forwards (was %d)", r.code, r.stdout, len(b.Forwards()), n)
	}
}

func TestForwardCommands(t *testing.T) {
	b, svc, data := tunnelBackend()
	d := startDaemon(t, b)
	ctx := context.Background()
	g1, _ := b.Connect(ctx, svc, "")
	g2, _ := b.Connect(ctx, svc, "")
	g3, _ := b.Connect(ctx, data, "")

	if got := d.ok("forward", g1.Session); got != "forwarding 127.0.0.1:40001 → "+svc+"\n" {
		t.Errorf("forward printed %q", got)
	}
	objs := jsonLines(t, d.ok("-o", "json", "forward", g2.Session, "9000"))
	if len(objs) != 1 || objs[0]["listen"] != "127.0.0.1:9000" || objs[0]["session"] != g2.Session || objs[0]["active"] != true ||
		objs[0]["resource_id"] != svc || objs[0]["provider"] != controltest.PeerID2.String() {
		t.Errorf("forward -o json = %v", objs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"forward", "nope"}, "peerctl: forward: not found: this node holds no session nope\n"},
		{[]string{"forward", g3.Session}, "not a TCP service"},
		{[]string{"forward", g1.Session, "9001"}, "already has a forward on 127.0.0.1:40001"},
		{[]string{"close", "nope"}, "peerctl: close forward: not found: no forward for session nope\n"},
	} {
		if r := d.run(tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}

	b.AddForward(node.ForwardInfo{Session: g1.Session, ResourceID: svc, Provider: controltest.PeerID2.String(), Listen: "127.0.0.1:40001",
		BytesIn: 1536, BytesOut: 300, ConnsOpen: 1, ConnsTotal: 4, Active: true})
	b.AddForward(node.ForwardInfo{Session: g2.Session, ResourceID: svc, Provider: controltest.PeerID2.String(), Listen: "127.0.0.1:9000",
		Err: "not restored: listen on 127.0.0.1:9000: address already in use"})
	p, s := shortIDOf(controltest.PeerID2.String()), shortIDOf(svc)
	want := fmt.Sprintf(`SESSION    LISTEN           RESOURCE     PROVIDER     IN       OUT    CONNS  ERROR
%s  127.0.0.1:40001  %s  %s  1.5 KiB  300 B  1/4
%s  127.0.0.1:9000   %s  %s  0 B      0 B    0/0    not restored: listen on 127.0.0.1:9000: address already in use
`, g1.Session, s, p, g2.Session, s, p)
	if got := d.ok("forwards"); got != want {
		t.Errorf("forwards:\n%s\nwant:\n%s", got, want)
	}
	if got := d.ok("forwards", "--no-trunc"); !strings.Contains(got, svc) || !strings.Contains(got, controltest.PeerID2.String()) {
		t.Errorf("forwards --no-trunc:\n%s", got)
	}
	var fs []map[string]any
	if err := json.Unmarshal([]byte(d.ok("-o", "json", "forwards")), &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0]["bytes_in"] != 1536.0 || fs[0]["conns_total"] != 4.0 || fs[0]["active"] != true || fs[1]["active"] != false ||
		fs[1]["error"] != "not restored: listen on 127.0.0.1:9000: address already in use" {
		t.Errorf("forwards -o json = %v", fs)
	}

	if got := d.ok("close", g1.Session); got != "closed the forward of "+g1.Session+"\n" {
		t.Errorf("close printed %q", got)
	}
	if got := d.ok("-o", "json", "close", g2.Session); got != `{"session":"`+g2.Session+`"}`+"\n" {
		t.Errorf("close -o json printed %q", got)
	}
	if n := len(b.Forwards()); n != 0 {
		t.Errorf("%d forwards left after closing both", n)
	}
}

func TestSessionsAndRevoke(t *testing.T) {
	b, svc, _ := tunnelBackend()
	d := startDaemon(t, b)
	now := time.Now()
	rid := resource.NewID(controltest.PeerID.String(), "mine")
	b.AddSession(node.SessionInfo{Session: "bciqgrantedsessionnumber01", ResourceID: rid, Peer: controltest.PeerID3,
		Issued: now.Add(-time.Hour), Expires: now.Add(23*time.Hour + 30*time.Minute + 10*time.Second), BytesIn: 100, BytesOut: 5 << 20, TunnelsOpen: 1})
	b.AddSession(node.SessionInfo{Session: "bciqoldsession", ResourceID: rid, Peer: controltest.PeerID3, Expires: now.Add(-time.Minute), Revoked: true})
	g, _ := b.Connect(context.Background(), svc, "")

	got := d.ok("sessions")
	// The consumer session was granted for an hour a moment ago (to the
	// second), which rounds to the minute as 1h0m.
	want := fmt.Sprintf(`ROLE      SESSION                     RESOURCE     PEER         EXPIRES    IN     OUT      REVOKED
provider  bciqgrantedsessionnumber01  %[1]s  %[2]s  in 23h30m  100 B  5.0 MiB  no
provider  bciqoldsession              %[1]s  %[2]s  expired    0 B    0 B      yes
consumer  %-26[3]s  %[4]s  %[5]s  in 1h0m    0 B    0 B      no
`, shortIDOf(rid), shortIDOf(controltest.PeerID3.String()), g.Session, shortIDOf(svc), shortIDOf(controltest.PeerID2.String()))
	if got != want {
		t.Errorf("sessions:\n%s\nwant:\n%s", got, want)
	}
	var ss []map[string]any
	if err := json.Unmarshal([]byte(d.ok("-o", "json", "sessions")), &ss); err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 || ss[0]["session"] != "bciqgrantedsessionnumber01" || ss[0]["role"] != "provider" || ss[0]["peer"] != controltest.PeerID3.String() ||
		ss[0]["bytes_out"] != float64(5<<20) || ss[0]["tunnels_open"] != 1.0 || ss[0]["revoked"] != false || ss[0]["issued"] == nil ||
		ss[2]["role"] != "consumer" || ss[2]["issued"] != nil {
		t.Errorf("sessions -o json = %v", ss)
	}

	if got := d.ok("revoke", "bciqgrantedsessionnumber01"); got != "revoked bciqgrantedsessionnumber01\n" {
		t.Errorf("revoke printed %q", got)
	}
	if got := d.ok("-o", "json", "revoke", "bciqoldsession"); got != `{"session":"bciqoldsession"}`+"\n" {
		t.Errorf("revoke -o json printed %q", got)
	}
	if list, _ := b.Sessions(context.Background()); !list[0].Revoked {
		t.Errorf("session not revoked: %+v", list[0])
	}
	r := d.run("revoke", g.Session)
	if r.code != 2 || r.stderr != "peerctl: revoke: not found: no session granted with that ID: "+g.Session+"\n" {
		t.Errorf("revoking a held session: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestSessionCompletions(t *testing.T) {
	b, svc, _ := tunnelBackend()
	d := startDaemon(t, b)
	ctx := context.Background()
	b.AddSession(node.SessionInfo{Session: "granted-1", ResourceID: "rid", Peer: controltest.PeerID3})
	b.AddSession(node.SessionInfo{Session: "revoked-1", ResourceID: "rid", Peer: controltest.PeerID3, Revoked: true})
	held, _ := b.Connect(ctx, svc, "")
	fwd, _ := b.Connect(ctx, svc, "")
	if _, err := b.Forward(ctx, fwd.Session, ""); err != nil {
		t.Fatal(err)
	}
	complete := func(args ...string) []string {
		t.Helper()
		r := d.run(append([]string{"__complete"}, args...)...)
		if r.code != 0 {
			t.Fatalf("__complete %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if strings.HasPrefix(line, ":") {
				if line != ":4" {
					t.Errorf("completion directive %s; want :4 (no files)", line)
				}
				break
			}
			name, _, _ := strings.Cut(line, "\t")
			names = append(names, name)
		}
		return names
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"revoke", ""}, []string{"granted-1"}},
		{[]string{"forward", ""}, []string{held.Session, fwd.Session}},
		{[]string{"forward", held.Session, ""}, nil},
		{[]string{"close", ""}, []string{fwd.Session}},
		{[]string{"connect", "x", "--forward", ""}, nil},
	} {
		if got := complete(tc.args...); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("completing %q: %q; want %q", tc.args, got, tc.want)
		}
	}
}

// failingForward fails every forward with a given error.
func failingForward(err error) func(context.Context, string, string) (node.ForwardInfo, error) {
	return func(context.Context, string, string) (node.ForwardInfo, error) { return node.ForwardInfo{}, err }
}

func TestForwardDaemonErrors(t *testing.T) {
	b, _, _ := tunnelBackend()
	b.ForwardFunc = failingForward(errors.New("forward: listen on 127.0.0.1:9000: bind: address already in use"))
	d := startDaemon(t, b)
	r := d.run("forward", "s", "9000")
	if r.code != 2 || r.stderr != "peerctl: forward: listen on 127.0.0.1:9000: bind: address already in use\n" {
		t.Errorf("forward on a taken port: exit %d, stderr %q", r.code, r.stderr)
	}
}
