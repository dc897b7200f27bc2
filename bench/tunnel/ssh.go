package main

// The ssh -L paths: a private sshd on 127.0.0.1 and an ssh client
// forwarding a local port to the sink through it.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

type sshTools struct{ sshd, ssh, keygen string }

// findSSH locates OpenSSH, or says how to install it.
func findSSH() (sshTools, error) {
	var t sshTools
	var missing []string
	look := func(name string, alts ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, a := range alts {
			if _, err := os.Stat(a); err == nil {
				return a
			}
		}
		missing = append(missing, name)
		return ""
	}
	t.sshd = look("sshd", "/usr/sbin/sshd")
	t.ssh = look("ssh")
	t.keygen = look("ssh-keygen")
	if len(missing) > 0 {
		return t, fmt.Errorf("%v not found; install OpenSSH (Debian: apt-get install -y openssh-server openssh-client)", missing)
	}
	return t, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitDial polls until addr accepts a connection.
func waitDial(addr string, timeout time.Duration, alive func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if err := alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections in %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var cipherRE = regexp.MustCompile(`kex: client->server cipher: (\S+)`)

// startSSH starts sshd and ssh -N -L; it returns the forward's address,
// the two processes, and the cipher they agreed on.
func startSSH(ps *procs, tools sshTools, name, cipher, sink string) (addr string, sshd, ssh *proc, agreed string, err error) {
	dir := filepath.Join(ps.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, nil, "", err
	}
	hostKey, userKey := filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "user_ed25519")
	for _, k := range []string{hostKey, userKey} {
		if out, err := exec.Command(tools.keygen, "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			return "", nil, nil, "", fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(userKey + ".pub")
	if err != nil {
		return "", nil, nil, "", err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		return "", nil, nil, "", err
	}
	sshdPort, err := freePort()
	if err != nil {
		return "", nil, nil, "", err
	}
	u, err := user.Current()
	if err != nil {
		return "", nil, nil, "", err
	}
	cfg := filepath.Join(dir, "sshd_config")
	// Nothing but what the bench needs; ciphers, MACs and key exchange are
	// OpenSSH's defaults.
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
LogLevel ERROR
`, sshdPort, hostKey, authKeys)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return "", nil, nil, "", err
	}
	// sshd's privilege separation wants this directory; Debian's service
	// creates it, and ours is not started by the service.
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755)
	}
	sshd, err = ps.start(name+"-sshd", tools.sshd, "-D", "-e", "-f", cfg)
	if err != nil {
		return "", nil, nil, "", err
	}
	alive := func(p *proc) func() error {
		return func() error {
			if !running(p.pid()) {
				return fmt.Errorf("%s exited: %s", p.name, p.stderrTail())
			}
			return nil
		}
	}
	sshdAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sshdPort))
	if err := waitDial(sshdAddr, 10*time.Second, alive(sshd)); err != nil {
		return "", nil, nil, "", err
	}
	lport, err := freePort()
	if err != nil {
		return "", nil, nil, "", err
	}
	args := []string{"-N", "-T", "-v", "-F", "/dev/null", "-i", userKey, "-p", strconv.Itoa(sshdPort),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%d:%s", lport, sink)}
	if cipher != "" {
		args = append(args, "-c", cipher)
	}
	args = append(args, u.Username+"@127.0.0.1")
	ssh, err = ps.start(name+"-ssh", tools.ssh, args...)
	if err != nil {
		return "", nil, nil, "", err
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lport))
	if err := waitDial(addr, 10*time.Second, alive(ssh)); err != nil {
		return "", nil, nil, "", err
	}
	agreed = "?"
	if m := cipherRE.FindStringSubmatch(ssh.stderrTailAll()); m != nil {
		agreed = m[1]
	}
	return addr, sshd, ssh, agreed, nil
}

func (p *proc) stderrTailAll() string {
	b, _ := os.ReadFile(p.errPath)
	return string(b)
}

// running reports whether pid is alive and not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ')' {
			return i+2 < len(s) && s[i+2] != 'Z'
		}
	}
	return false
}

var errNoSSH = errors.New("ssh paths skipped")
