// Package wstest is the WebSocket client of the tests and the load
// drivers (reliability, the soak, wsbench): it dials /stream with a query,
// a bearer token, an Origin or any other header, reads what the server
// sends with a timeout, whole messages or frame by frame, and sends text,
// pings and close frames.
//
// A Conn reads only when asked: one that is not read is a stalled client
// (with Options.ReadBuffer shrinking its socket buffer), and a frame a
// test did not expect is seen as it came. ReadMessage answers pings and
// close frames as a client library does; ReadFrame hands over every frame
// untouched. A Conn reads from one goroutine at a time; Send and its
// relatives may be called from others.
//
// It speaks the protocol of RFC 6455 as a well-behaved client: masked
// frames, no extensions. Tests that send malformed bytes on purpose write
// them on NetConn (or on a handshake of their own, wrapped with NewConn).
package wstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Opcodes (RFC 6455 §5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// CloseNoStatus is the code ReadMessage reports for a close frame
// without one (RFC 6455 §7.1.5).
const CloseNoStatus = 1005

// Options configure Dial; zero values are fine.
type Options struct {
	// Header is sent with the handshake.
	Header http.Header
	// Origin, when set, is the Origin header (a browser's page).
	Origin string
	// Token, when set, is sent as "Authorization: Bearer <Token>". (A
	// token in the query goes in the URL.)
	Token string
	// Timeout bounds the TCP dial and the handshake (default 10 s).
	Timeout time.Duration
	// ReadBuffer, when > 0, sets the socket's receive buffer (SO_RCVBUF)
	// before the handshake: a stalled client then stalls after a few KiB.
	ReadBuffer int
	// BufferSize is the size of the read buffer (default 4096).
	BufferSize int
	// MaxFrame is the largest frame payload, and message, accepted
	// (default 16 MiB).
	MaxFrame int
}

// Conn is an open WebSocket connection.
type Conn struct {
	conn     net.Conn
	br       *bufio.Reader
	maxFrame int
	// frame is the frame being read, msg and started the message: a read
	// that times out keeps what it has, and the next one goes on from
	// there.
	frame   []byte
	msg     []byte
	started bool

	wmu       sync.Mutex
	closeSent bool
}

// Frame is one frame from the server.
type Frame struct {
	Op      byte
	Fin     bool
	Payload []byte
}

// CloseCode returns the code and reason of a close frame (0 and "" for
// another frame or a close frame without a code).
func (f Frame) CloseCode() (uint16, string) {
	if f.Op != OpClose || len(f.Payload) < 2 {
		return 0, ""
	}
	return binary.BigEndian.Uint16(f.Payload), string(f.Payload[2:])
}

// CloseError is what ReadMessage returns when the server closed the
// stream: its close code and reason.
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wstest: stream closed by the server: %d %q", e.Code, e.Reason)
}

// StatusError is Dial's error when the server answers the handshake with
// something other than 101.
type StatusError struct {
	StatusCode int
	Status     string
}

func (e *StatusError) Error() string { return "wstest: handshake answered " + e.Status }

// Dial opens a WebSocket connection to rawURL (ws:// or http://, with the
// path and query, e.g. http://127.0.0.1:8000/stream?after=0). When the
// server answers the handshake other than with 101, Dial returns a nil
// Conn, the response (its body read into memory and readable) and a
// *StatusError; when it cannot get an answer, a nil response.
func Dial(rawURL string, o Options) (*Conn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: %w", err)
	}
	switch u.Scheme {
	case "ws", "http":
	default:
		return nil, nil, fmt.Errorf("wstest: %s: want a ws:// or http:// URL", rawURL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 4096
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 16 << 20
	}
	deadline := time.Now().Add(o.Timeout)
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: %w", err)
	}
	resp, br, err := handshake(conn, u, o, deadline)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, resp, err
	}
	c := NewConn(conn, br)
	c.maxFrame = o.MaxFrame
	return c, resp, nil
}

// handshake writes the opening handshake and reads the answer; for an
// answer other than 101 it returns the response with its body read and a
// *StatusError.
func handshake(conn net.Conn, u *url.URL, o Options, deadline time.Time) (*http.Response, *bufio.Reader, error) {
	if o.ReadBuffer > 0 {
		tcp, ok := conn.(*net.TCPConn)
		if !ok {
			return nil, nil, errors.New("wstest: ReadBuffer needs a TCP connection")
		}
		if err := tcp.SetReadBuffer(o.ReadBuffer); err != nil {
			return nil, nil, fmt.Errorf("wstest: %w", err)
		}
	}
	_ = conn.SetDeadline(deadline)
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Host: u.Host, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	for k, vs := range o.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if o.Origin != "" {
		req.Header.Set("Origin", o.Origin)
	}
	if o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	if err := req.Write(conn); err != nil {
		return nil, nil, fmt.Errorf("wstest: handshake: %w", err)
	}
	br := bufio.NewReaderSize(conn, o.BufferSize)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil, &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if want := acceptKey(key); resp.Header.Get("Sec-WebSocket-Accept") != want {
		return resp, nil, fmt.Errorf("wstest: handshake: Sec-WebSocket-Accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), want)
	}
	_ = conn.SetDeadline(time.Time{})
	return resp, br, nil
}

// acceptKey is the Sec-WebSocket-Accept answering key (RFC 6455 §4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// NewConn wraps a connection whose handshake the caller did itself
// (byte by byte, on purpose); br holds what was read past the handshake.
func NewConn(conn net.Conn, br *bufio.Reader) *Conn {
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return &Conn{conn: conn, br: br, maxFrame: 16 << 20}
}

// NetConn is the TCP connection (to write raw bytes, set deadlines).
func (c *Conn) NetConn() net.Conn { return c.conn }

// Read reads the raw bytes that follow the handshake (what ReadFrame
// parses), through the same buffer; to see, say, that the server hung up.
func (c *Conn) Read(p []byte) (int, error) { return c.br.Read(p) }

// Close closes the TCP connection (no close frame: see SendClose).
func (c *Conn) Close() error { return c.conn.Close() }

// ReadFrame reads the next frame, waiting at most timeout (a timeout <= 0
// gives up at once unless a frame is already buffered). A read that times
// out can be retried: the part of a frame already read is kept.
func (c *Conn) ReadFrame(timeout time.Duration) (Frame, error) {
	return c.readFrame(time.Now().Add(timeout), false)
}

// readFrame reads one frame by the deadline. In ReadLoop (loop) the
// deadline is already set (none), and the payload is valid until the
// next read only (its buffer is read into again); otherwise it is the
// caller's.
func (c *Conn) readFrame(deadline time.Time, loop bool) (Frame, error) {
	if !loop {
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return Frame{}, err
		}
	}
	if err := c.fill(2); err != nil {
		return Frame{}, err
	}
	b0, b1 := c.frame[0], c.frame[1]
	if b0&0x70 != 0 {
		return Frame{}, fmt.Errorf("wstest: frame with RSV bits %#x (no extension was negotiated)", b0&0x70)
	}
	if b1&0x80 != 0 {
		return Frame{}, errors.New("wstest: masked frame from the server")
	}
	hlen, n := 2, uint64(b1&0x7f)
	switch n {
	case 126:
		hlen = 4
	case 127:
		hlen = 10
	}
	if err := c.fill(hlen); err != nil {
		return Frame{}, err
	}
	switch hlen {
	case 4:
		n = uint64(binary.BigEndian.Uint16(c.frame[2:4]))
	case 10:
		n = binary.BigEndian.Uint64(c.frame[2:10])
	}
	if n > uint64(c.maxFrame) {
		return Frame{}, fmt.Errorf("wstest: frame of %d bytes, more than the %d accepted", n, c.maxFrame)
	}
	if err := c.fill(hlen + int(n)); err != nil {
		return Frame{}, err
	}
	f := Frame{Op: b0 & 0x0f, Fin: b0&0x80 != 0, Payload: c.frame[hlen:]}
	if loop {
		c.frame = c.frame[:0]
	} else {
		c.frame = nil
	}
	return f, nil
}

// fill reads until c.frame holds n bytes, never past them (the next
// frame stays in the buffer).
func (c *Conn) fill(n int) error {
	if cap(c.frame) < n {
		c.frame = append(make([]byte, 0, max(n, 64)), c.frame...)
	}
	for len(c.frame) < n {
		m, err := c.br.Read(c.frame[len(c.frame):n])
		c.frame = c.frame[:len(c.frame)+m]
		if err != nil && len(c.frame) < n {
			return err
		}
	}
	return nil
}

// ReadMessage returns the next text or binary message (its fragments
// joined), waiting at most timeout for the whole of it; like ReadFrame it
// can be retried after a timeout. On the way it answers pings with pongs
// and skips pongs. When the server closes the stream it answers the close
// frame (unless it sent one first) and returns a *CloseError.
func (c *Conn) ReadMessage(timeout time.Duration) ([]byte, error) {
	return c.readMessage(time.Now().Add(timeout), false)
}

// readMessage reads one message by the deadline; loop is readFrame's.
func (c *Conn) readMessage(deadline time.Time, loop bool) ([]byte, error) {
	for {
		f, err := c.readFrame(deadline, loop)
		if err != nil {
			return nil, err
		}
		switch f.Op {
		case OpPing:
			if err := c.Send(OpPong, f.Payload); err != nil {
				return nil, err
			}
			continue
		case OpPong:
			continue
		case OpClose:
			code, reason := f.CloseCode()
			if code == 0 {
				code = CloseNoStatus
			}
			c.wmu.Lock()
			echo := !c.closeSent
			c.wmu.Unlock()
			if echo {
				_ = c.Send(OpClose, f.Payload[:min(2, len(f.Payload))])
			}
			return nil, &CloseError{Code: code, Reason: reason}
		case OpText, OpBinary:
			if c.started {
				return nil, errors.New("wstest: a new message inside a fragmented one")
			}
			if f.Fin {
				return f.Payload, nil
			}
			c.started, c.msg = true, append([]byte(nil), f.Payload...)
			continue
		case OpContinuation:
			if !c.started {
				return nil, errors.New("wstest: continuation frame without a message")
			}
			if len(c.msg)+len(f.Payload) > c.maxFrame {
				return nil, fmt.Errorf("wstest: message of more than the %d bytes accepted", c.maxFrame)
			}
			c.msg = append(c.msg, f.Payload...)
		default:
			return nil, fmt.Errorf("wstest: frame with opcode %#x", f.Op)
		}
		if f.Fin {
			m := c.msg
			c.msg, c.started = nil, false
			return m, nil
		}
	}
}

// ReadLoop reads messages without a deadline and hands each to fn (in
// this goroutine) until the stream ends; it returns why: a *CloseError
// when the server closed it, or the read error. msg is valid until fn
// returns (its buffer is read into again): a load driver's thousands of
// clients allocate nothing per message.
func (c *Conn) ReadLoop(fn func(msg []byte)) error {
	if err := c.conn.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	for {
		m, err := c.readMessage(time.Time{}, true)
		if err != nil {
			return err
		}
		fn(m)
	}
}

// Send writes one masked frame with FIN set: any opcode, any payload (a
// control frame with more than 125 bytes is the caller's business).
func (c *Conn) Send(op byte, payload []byte) error {
	b := make([]byte, 0, 14+len(payload))
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, x := range payload {
		b = append(b, x^mask[i%4])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if op == OpClose {
		c.closeSent = true
	}
	_, err := c.conn.Write(b)
	return err
}

// SendText sends a text message.
func (c *Conn) SendText(p []byte) error { return c.Send(OpText, p) }

// Ping sends a protocol ping.
func (c *Conn) Ping(p []byte) error { return c.Send(OpPing, p) }

// SendClose sends a close frame with code and reason (the TCP connection
// stays open: read the server's answer, then Close).
func (c *Conn) SendClose(code uint16, reason string) error {
	return c.Send(OpClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}
