package codeshape

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/pullnet/pullnet"

func goList(t *testing.T, format string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", format, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, line := range goList(t, "{{.ImportPath}}\t{{.Name}}\t{{.Doc}}") {
		parts := strings.SplitN(line, "\t", 3)
		path, name, doc := parts[0], parts[1], parts[2]
		if strings.Contains(path, "/proto/gen/") || name == "main" && strings.HasPrefix(doc, "Command ") {
			continue
		}
		if !strings.HasPrefix(doc, "Package "+name+" ") && !(name == "main" && strings.HasPrefix(doc, "Command ")) {
			t.Errorf("%s: package doc should start with %q, got %q", path, "Package "+name, doc)
		}
	}
}

// The node package is pullnet's public library: generated wire and control
// types must be converted at its edge, never leak into its API.
func TestNodeAPIHasNoGeneratedTypes(t *testing.T) {
	for _, pkg := range []string{"./node", "./resource", "./peerctl/client"} {
		out, err := exec.Command("go", "doc", "-all", module+strings.TrimPrefix(pkg, ".")).CombinedOutput()
		if err != nil {
			t.Fatalf("go doc %s: %v\n%s", pkg, err, out)
		}
		if m := regexp.MustCompile(`\b(wirev1|controlv1|controlv1connect)\.`).Find(out); m != nil {
			t.Errorf("%s exposes generated type %s in its API", pkg, m)
		}
	}
}

// Libraries log through the *slog.Logger they are given; only mains may
// touch the global logger.
func TestNoGlobalLoggingInLibraries(t *testing.T) {
	global := regexp.MustCompile(`\bslog\.(Default|SetDefault|Info|Warn|Error|Debug|Log)\(|\blog\.(Print|Printf|Println|Fatal|Fatalf)\(`)
	root := filepath.Join("..", "..")
	for _, dir := range goList(t, "{{if ne .Name \"main\"}}{{.Dir}}{{end}}") {
		if dir == "" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for n := 1; sc.Scan(); n++ {
				if global.Match(sc.Bytes()) {
					rel, _ := filepath.Rel(root, f)
					t.Errorf("%s:%d logs through a global logger: %s", rel, n, strings.TrimSpace(sc.Text()))
				}
			}
		}
	}
}
