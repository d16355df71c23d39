package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmePath is the README the tests read their examples from: the file
// itself, never a copy, so an example that stops working fails here.
const readmePath = "../README.md"

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	lang string // the info string's first word: sh, go, hcl, text
	mark string // "skip" or "docker" from a <!-- readme-test: ... --> line just above, or ""
	line int    // line of the opening fence
	code string
}

// readmeMark is the HTML comment (invisible on GitHub) that tells the README
// test what to do with the block after it: skip a set-up block, or run a
// block only on the docker job.
var readmeMark = regexp.MustCompile(`^<!-- readme-test: (skip|docker)\b.* -->$`)

// readmeBlocks parses README.md's fenced code blocks in order.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		case strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.Fields(line[3:] + " ?")[0], line: n}
			if m := readmeMark.FindStringSubmatch(prev); m != nil {
				cur.mark = m[1]
			} else if strings.Contains(prev, "readme-test") {
				t.Fatalf("README.md:%d: unknown readme-test mark %q (want skip or docker)", n-1, prev)
			}
		}
		prev = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: code block never closed", cur.line)
	}
	return blocks
}

// TestReadme runs every shell block of README.md, in order, in one bash
// (as a user pasting them would), against a fresh emulator: the AWS CLI
// calls, redis-cli against the endpoints they return, the failover, the
// snapshot and restore, the clean-up. Blocks marked docker run on the docker
// job only; blocks marked skip are the set-up commands this test stands in
// for. Before them, the Go example is compiled from the README and run
// twice: the second run must fail with ReplicationGroupAlreadyExists.
func TestReadme(t *testing.T) {
	requireAWSCLI(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed (run scripts/install-deps)")
	}
	t.Parallel()
	blocks := readmeBlocks(t)
	e := startEmulator(t)
	begin := time.Now()

	var goCode string
	var script strings.Builder
	// -x traces each command with the time it started (bash 5's
	// EPOCHREALTIME), so a failure or a slow step shows where it is.
	script.WriteString("set -eo pipefail\nPS4='+ ${EPOCHREALTIME} '\n")
	ran, skipped := 0, 0
	docker := testRuntime() == "docker"
	for _, b := range blocks {
		switch {
		case b.lang == "go":
			if goCode != "" {
				t.Fatalf("README.md:%d: a second go block; the test compiles one", b.line)
			}
			goCode = b.code
		case b.lang != "sh":
		case b.mark == "skip", b.mark == "docker" && !docker:
			skipped++
		default:
			fmt.Fprintf(&script, "echo '### README.md:%d' >&2\n%s", b.line, b.code)
			ran++
		}
	}
	if ran < 10 || goCode == "" {
		t.Fatalf("README.md has %d runnable shell blocks and go example %t: the parser lost them", ran, goCode != "")
	}

	runGoExample(t, goCode, e.url)
	t.Logf("the Go example compiled and ran twice in %v", time.Since(begin).Round(time.Millisecond))

	ctx := ctxT(t, 15*time.Minute)
	dir := t.TempDir()
	path := filepath.Join(dir, "readme.sh")
	if err := os.WriteFile(path, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", "-x", path)
	cmd.Dir = ".." // the README's commands run from the checkout (scripts/..., docker-compose.yml)
	// A child still holding the output when bash is killed (a build the
	// deadline cut off) must not keep the test waiting.
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(os.Environ(),
		// Debian's AWS CLI v2 first: another aws may be earlier on PATH.
		"PATH="+filepath.Dir(awsCLI)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ENDPOINT="+e.url,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"),
		"TMPDIR="+dir,
		// The online migration example's own server, on a free port.
		"SRC_PORT="+strconv.Itoa(freePort(t)),
	)
	if docker {
		project := fmt.Sprintf("ecreadme%d", time.Now().UnixNano()%1_000_000)
		env := []string{
			"COMPOSE_PROJECT_NAME=" + project,
			"ELASTICACHE_LOCAL_PORT=" + strconv.Itoa(freePort(t)),
			"MINIO_PORT=" + strconv.Itoa(freePort(t)),
			"ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.41.2",
		}
		cmd.Env = append(cmd.Env, env...)
		t.Cleanup(func() {
			// The block ends with docker-compose down -v; this is for a
			// run cut off before it.
			if out, err := composeCmd(t, project, env, "down", "-v").CombinedOutput(); err != nil {
				t.Logf("compose down: %v\n%s", err, out)
			}
		})
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("README.md's shell blocks failed: %v (the last ### line names the block)\n%s", err, tailLines(out.String(), 80))
	}
	t.Logf("%d shell blocks ran, %d skipped (set-up, or docker on the %s runtime), in %v", ran, skipped, testRuntime(), time.Since(begin).Round(time.Millisecond))
	if testing.Verbose() {
		t.Logf("output:\n%s", out.String())
	}
}

// runGoExample compiles the README's Go example in a module of its own
// (with this module's requirements, so nothing is downloaded) and runs it
// twice against the emulator at url: the first run creates its group and
// prints the primary endpoint, the second must fail with the create's
// error rather than report success.
func runGoExample(t *testing.T, code, url string) {
	t.Helper()
	ctx := ctxT(t, 5*time.Minute)
	dir := t.TempDir()
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	mod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(mod, []byte("module readmeexample"))
	for name, data := range map[string][]byte{"go.mod": mod, "go.sum": sum, "main.go": []byte(code)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "example")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's Go example does not compile: %v\n%s", err, out)
	}
	run := func() (string, error) {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = append(os.Environ(), "ENDPOINT="+url)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err != nil || !regexp.MustCompile(`^[0-9.]+:6379\n$`).MatchString(out) {
		t.Fatalf("the README's Go example: %v\n%s", err, out)
	}
	out, err = run()
	if err == nil || !strings.Contains(out, "ReplicationGroupAlreadyExists") {
		t.Fatalf("the README's Go example run again: err %v, want a failure naming ReplicationGroupAlreadyExists\n%s", err, out)
	}
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
