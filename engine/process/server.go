package process

// Finding and probing the server binary.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// server is one engine binary and what it supports.
type server struct {
	path    string
	version string
	caps    serverCaps
}

type serverCaps struct {
	procTitle  bool // set-proc-title directive (6.2+)
	bindSource bool // bind-source-addr directive (7.0+)
}

// findBinary resolves name (a path, or a command looked up on PATH and then
// in searchDirs) to an absolute path of an executable file.
func findBinary(name string) (string, error) {
	if strings.ContainsRune(name, filepath.Separator) || strings.ContainsRune(name, '/') {
		if err := executable(name); err != nil {
			return "", err
		}
		return filepath.Abs(name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, d := range searchDirs {
		p := filepath.Join(d, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not on PATH nor in %s", name, strings.Join(searchDirs, ", "))
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

var versionRE = regexp.MustCompile(`v=(\d+)\.(\d+)(?:\.(\d+))?`)

// probeServer runs "<path> --version" to check the binary and learn its version.
func probeServer(path string) (server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return server{}, fmt.Errorf("engine/process: %s --version: %w: %s", path, err, bytes.TrimSpace(out))
	}
	s := server{path: path}
	if m := versionRE.FindStringSubmatch(string(out)); m != nil {
		s.version = strings.TrimPrefix(m[0], "v=")
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		s.caps.procTitle = major > 6 || major == 6 && minor >= 2
		s.caps.bindSource = major >= 7
	}
	return s, nil
}
