package enginetest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// ClusterPort picks a port free on host together with its cluster bus port
// (port + 10000), for cluster nodes a test starts at a fixed address.
func ClusterPort(t testing.TB, host string) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(20000)
		ok := true
		for _, q := range []int{p, p + 10000} {
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(q)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}
