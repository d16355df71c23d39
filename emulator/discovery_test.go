package emulator

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestDiscoveryAnswers: the configuration endpoint's replies are AWS's
// documented format byte for byte (the README's example), a quit ends the
// connection, and any other command goes to a serving node with what
// followed it.
func TestDiscoveryAnswers(t *testing.T) {
	node, err := net.Listen("tcp", "127.0.23.2:0")
	if err != nil {
		t.Skipf("no loopback address 127.0.23.2: %v", err)
	}
	defer node.Close()
	got := make(chan string, 1)
	go func() {
		c, err := node.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(c, b, len("get k\r\nget j\r\n"))
		got <- string(b[:n])
		_, _ = io.WriteString(c, "END\r\n")
	}()
	nodeEP := node.Addr().(*net.TCPAddr)
	srv, err := listenDiscovery(engine.Endpoint{Host: "127.0.23.3", Port: 0}, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.set(&discoveryConfig{version: 1, nodes: []engine.Endpoint{{Host: "127.0.0.3", Port: 11211}, {Host: "127.0.0.4", Port: 11211}, {Host: "127.0.0.5", Port: 11211}},
		serving: []engine.Endpoint{{Host: nodeEP.IP.String(), Port: nodeEP.Port}}})

	c, err := net.Dial("tcp", srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	payload := "1\n127.0.0.3|127.0.0.3|11211 127.0.0.4|127.0.0.4|11211 127.0.0.5|127.0.0.5|11211\n"
	for cmd, want := range map[string]string{
		"config get cluster":            "CONFIG cluster 0 80\r\n" + payload + "\r\nEND\r\n",
		"get AmazonElastiCache:cluster": "VALUE AmazonElastiCache:cluster 0 80\r\n" + payload + "\r\nEND\r\n",
	} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		b := make([]byte, len(want))
		if _, err := io.ReadFull(br, b); err != nil || string(b) != want {
			t.Fatalf("%s = %q, %v; want %q", cmd, b, err, want)
		}
	}
	fmt.Fprint(c, "get k\r\nget j\r\n")
	if s := <-got; s != "get k\r\nget j\r\n" {
		t.Fatalf("the node got %q", s)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "END\r\n" {
		t.Fatalf("the node's answer came back as %q, %v", line, err)
	}
}
