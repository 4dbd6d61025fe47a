package wsfanout

import (
	"bufio"
	"io"
)

// frameError is the read error of a refused frame header. Uint16 gives its
// close code, as gws's own close errors do (classifyReadErr).
type frameError struct {
	code   uint16
	reason string
}

func (e *frameError) Error() string  { return "wsfanout: refused frame header: " + e.reason }
func (e *frameError) Uint16() uint16 { return e.code }

var (
	errLengthTopBit = &frameError{CloseProtocolError, "protocol error"}
	errFrameTooBig  = &frameError{CloseMessageTooLarge, "message too large"}
)

// frameGuard checks every client frame header before gws parses it. gws
// converts a 64-bit payload length to int without a check: with the top
// bit set the length is negative, passes gws's ReadMaxPayloadSize test and
// makes it slice with a negative bound, a panic in the read goroutine. The
// guard is the reader under the bufio.Reader gws parses from; it follows
// the frame boundaries of the byte stream (header bytes are decoded one by
// one, payload bytes are only counted) and refuses a header whose length
// has the top bit set (1002, RFC 6455 requires it clear) or exceeds the
// inbound cap (1009). The byte that completes the length and everything
// after it are withheld, so gws never holds a whole refused header: it
// gets the bytes before it, then the error, and ends its read loop.
//
// Only the reader goroutine uses a frameGuard.
type frameGuard struct {
	src io.Reader
	// pending holds the bytes the HTTP server had read past the handshake
	// before the connection was hijacked; they are checked like the rest.
	pending []byte
	max     uint64
	// refuse is called once, before Read returns the error: it sends the
	// close frame. Set before the read loop starts.
	refuse func(*frameError)
	err    error

	// Position in the stream: inside a header (hdr of its bytes seen, of
	// which the first lenEnd end its length field, need in all) or inside
	// a payload (skip bytes left).
	skip   uint64
	length uint64
	hdr    int
	lenEnd int
	need   int
}

// newFrameGuard takes over br: the bytes it buffers move into the guard
// and br is reset to read through the guard from src, keeping its buffer.
func newFrameGuard(src io.Reader, br *bufio.Reader, max int) *frameGuard {
	g := &frameGuard{src: src, max: uint64(max)}
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		g.pending = append([]byte(nil), p...)
	}
	br.Reset(g)
	return g
}

func (g *frameGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	var n int
	var err error
	if len(g.pending) > 0 {
		n = copy(p, g.pending)
		if g.pending = g.pending[n:]; len(g.pending) == 0 {
			g.pending = nil
		}
	} else {
		n, err = g.src.Read(p)
	}
	if ok, ferr := g.scan(p[:n]); ferr != nil {
		g.err = ferr
		if g.refuse != nil {
			g.refuse(ferr)
		}
		return ok, ferr
	}
	return n, err
}

// scan advances over p. It returns len(p), or on a refused header the
// number of bytes before the one that completed its length, and the error.
func (g *frameGuard) scan(p []byte) (int, *frameError) {
	for i := 0; i < len(p); i++ {
		if g.skip > 0 {
			rest := uint64(len(p) - i)
			if rest <= g.skip {
				g.skip -= rest
				return len(p), nil
			}
			i += int(g.skip)
			g.skip = 0
		}
		b := p[i]
		switch g.hdr {
		case 0: // FIN, RSV and opcode: gws checks them
		case 1:
			g.lenEnd, g.length = 2, uint64(b&0x7f)
			switch g.length {
			case 126:
				g.lenEnd, g.length = 4, 0
			case 127:
				g.lenEnd, g.length = 10, 0
			}
			g.need = g.lenEnd
			if b&0x80 != 0 {
				g.need += 4 // mask key
			}
		default:
			if g.hdr < g.lenEnd {
				g.length = g.length<<8 | uint64(b)
			}
		}
		g.hdr++
		if g.hdr < 2 {
			continue
		}
		if g.hdr == g.lenEnd {
			switch {
			case g.length>>63 != 0:
				return i, errLengthTopBit
			case g.length > g.max:
				return i, errFrameTooBig
			}
		}
		if g.hdr == g.need {
			g.skip, g.hdr = g.length, 0
		}
	}
	return len(p), nil
}
