package wsfanout

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// chunkReader returns its data in reads of random sizes (1 to 3×max
// frame header), so headers and payloads are cut at every position.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+r.rnd.IntN(42), len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// appendTestFrame appends a frame header for length n (in the given
// length form: 0 shortest, 2 16-bit, 8 64-bit), a mask key when masked,
// and n payload bytes.
func appendTestFrame(dst []byte, rnd *rand.Rand, n uint64, form int, masked bool) []byte {
	b0 := byte(rnd.IntN(256))
	var mask byte
	if masked {
		mask = 0x80
	}
	switch form {
	case 0:
		dst = append(dst, b0, mask|byte(n))
	case 2:
		dst = append(dst, b0, mask|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, mask|127)
		dst = binary.BigEndian.AppendUint64(dst, n)
	}
	if masked {
		dst = append(dst, 0xA1, 0xB2, 0xC3, 0xD4)
	}
	for range n {
		dst = append(dst, byte(rnd.IntN(256)))
	}
	return dst
}

// TestFrameGuardStream: a stream of valid frames of every length form,
// masked or not, passes whole however it is cut into reads and however
// much of it was buffered before the guard took over; a refused header
// after them is cut exactly before the byte that completes its length.
func TestFrameGuardStream(t *testing.T) {
	const max = 300
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		var s []byte
		for range rnd.IntN(12) {
			n := uint64(rnd.IntN(max + 1))
			form := rnd.IntN(3) * 2 // 0, 2 (if it fits) or 4 → 8
			switch {
			case form == 0 && n > 125, form == 2 && n > 0xFFFF:
				form = 8
			case form == 4:
				form = 8
			}
			s = appendTestFrame(s, rnd, n, form, rnd.IntN(4) != 0)
		}
		want, wantErr := len(s), error(nil)
		switch round % 3 {
		case 1: // top bit: refused at its last length byte, the 10th
			wantErr = errLengthTopBit
			want = len(s) + 9
			s = appendTestFrame(s, rnd, 0, 8, true)
			s[want-7] |= 0x80 // the first length byte
		case 2: // above the cap, in the 16- or 64-bit form
			wantErr = errFrameTooBig
			n, form := uint64(max+1+rnd.IntN(1000)), 2
			if rnd.IntN(2) == 0 {
				n, form = 1<<32|n, 8
			}
			want = len(s) + 1 + form
			s = appendTestFrame(s, rnd, 0, form, rnd.IntN(2) == 0)
			if form == 2 {
				binary.BigEndian.PutUint16(s[want-1:], uint16(n))
			} else {
				binary.BigEndian.PutUint64(s[want-7:], n)
			}
			s = append(s, "trailing bytes never read"...)
		}
		// The HTTP server's reader may hold the first k bytes.
		k := 0
		if len(s) > 0 && rnd.IntN(2) == 0 {
			k = rnd.IntN(len(s) + 1)
		}
		br := bufio.NewReaderSize(bytes.NewReader(s[:k]), 16+len(s))
		_, _ = br.Peek(k)
		var refused []*frameError
		g := newFrameGuard(&chunkReader{data: s[k:], rnd: rnd}, br, max)
		g.refuse = func(e *frameError) { refused = append(refused, e) }
		got, err := io.ReadAll(br)
		if wantErr == nil {
			if err != nil || !bytes.Equal(got, s) || len(refused) != 0 {
				t.Fatalf("round %d: valid stream of %d bytes: read %d, %v, refused %v", round, len(s), len(got), err, refused)
			}
			continue
		}
		if !errors.Is(err, wantErr) || len(got) != want || !bytes.Equal(got, s[:want]) {
			t.Fatalf("round %d: read %d bytes and %v, want %d and %v", round, len(got), err, want, wantErr)
		}
		if len(refused) != 1 || refused[0] != wantErr {
			t.Fatalf("round %d: refuse called with %v, want once with %v", round, refused, wantErr)
		}
		if n, err := g.Read(make([]byte, 8)); n != 0 || err != wantErr {
			t.Fatalf("round %d: read after refusal: %d, %v", round, n, err)
		}
	}
}

// BenchmarkFrameGuardPing is the guard's cost on the usual client traffic:
// one read holding one masked text "ping".
func BenchmarkFrameGuardPing(b *testing.B) {
	frame := []byte{0x81, 0x84, 1, 2, 3, 4, 'p' ^ 1, 'i' ^ 2, 'n' ^ 3, 'g' ^ 4}
	g := &frameGuard{max: DefaultMaxMessageBytes}
	for b.Loop() {
		if n, err := g.scan(frame); n != len(frame) || err != nil {
			b.Fatal(n, err)
		}
	}
}
