//go:build unix

package proxy

import (
	"io"
	"net"
	"syscall"
)

// peekByte waits for c's first byte and returns it without taking it from
// the socket (MSG_PEEK), so the backend reads the connection from its
// start and c stays a plain *net.TCPConn for splice.
func peekByte(c *net.TCPConn) (b byte, consumed bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var buf [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		return rerr != syscall.EAGAIN && rerr != syscall.EINTR
	})
	switch {
	case err != nil:
		return 0, false, err
	case rerr != nil:
		return 0, false, rerr
	case n == 0:
		return 0, false, io.EOF
	}
	return buf[0], false, nil
}
