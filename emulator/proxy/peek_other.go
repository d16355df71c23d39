//go:build !unix

package proxy

import (
	"io"
	"net"
)

// peekByte reads c's first byte; without MSG_PEEK it is taken from the
// socket, and the caller sends it on to the backend first.
func peekByte(c *net.TCPConn) (b byte, consumed bool, err error) {
	var buf [1]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return 0, false, err
	}
	return buf[0], true, nil
}
