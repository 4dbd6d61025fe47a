package wsfanout

import (
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// wsConn is the socket under a gws connection. Its mutex serializes our
// chunk writes with gws's own writes (close echo, protocol errors), so
// frames never interleave; after a close frame, ours or gws's, it
// discards every later write (RFC 6455 §5.5.1: nothing follows a close
// frame).
type wsConn struct {
	net.Conn
	mu struct {
		sync.Mutex
		closeSent bool
	}
}

// Write is the path gws uses (handshake response, its close frames).
func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closeSent {
		return len(p), nil
	}
	n, err := c.Conn.Write(p)
	// gws writes a frame in one call; a reply our writer still has queued
	// must not follow its close frame.
	if len(p) > 0 && p[0] == 0x80|opClose {
		c.mu.closeSent = true
	}
	return n, err
}

// writeChunk writes pre-encoded frames, first setting the write deadline
// unless it is zero (the one set before still applies); close marks the
// chunk as ending with our close frame.
func (c *wsConn) writeChunk(p []byte, deadline time.Time, close bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closeSent {
		return 0, net.ErrClosed
	}
	if !deadline.IsZero() {
		if err := c.Conn.SetWriteDeadline(deadline); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Write(p)
	if close {
		c.mu.closeSent = true
	}
	return n, err
}

// markClosed stops all further writes (the socket is being abandoned).
func (c *wsConn) markClosed() {
	c.mu.Lock()
	c.mu.closeSent = true
	c.mu.Unlock()
}

// WebSocket opcodes and close codes used by the server.
const (
	opText  = 0x1
	opClose = 0x8
	opPong  = 0xA

	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	ClosePolicyViolation = 1008
	CloseMessageTooLarge = 1009
	// CloseInternalError is sent, when still possible, on a connection
	// whose goroutine panicked.
	CloseInternalError = 1011
	// CloseTooSlow is sent to a client that stopped reading; the reason
	// names the cursor to resume from.
	CloseTooSlow = 4000
)

// appendFrame appends one unmasked, unfragmented server frame.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n <= 125:
		dst = append(dst, 0x80|op, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|op, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|op, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// appendCloseFrame appends a close frame; the reason is cut to fit the
// 125-byte control frame limit.
func appendCloseFrame(dst []byte, code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	var p [125]byte
	binary.BigEndian.PutUint16(p[:2], code)
	n := copy(p[2:], reason)
	return appendFrame(dst, opClose, p[:2+n])
}
