package main

// Tunnel protocol v1 (docs/PROTOCOL-tunnel.md): framing, handshake, and the
// byte stream of transport messages that carries yamux.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"
)

const (
	tunnelPrologue = "postern/tunnel/1"
	maxPlaintext   = 65519
	statusOK       = 0x00
)

// errHandshakeEOF: the peer closed before its handshake message arrived.
var errHandshakeEOF = errors.New("connection closed during handshake")

func tunnelConfig(initiator bool, static noise.DHKey, peer, psk []byte, rng io.Reader) noise.Config {
	return noise.Config{
		CipherSuite:           suite,
		Random:                rng,
		Pattern:               noise.HandshakeIK,
		Initiator:             initiator,
		Prologue:              []byte(tunnelPrologue),
		PresharedKey:          psk,
		PresharedKeyPlacement: 2,
		StaticKeypair:         static,
		PeerStatic:            peer,
	}
}

func writeFrame(w io.Writer, body []byte) error {
	if len(body) > 65535 {
		return errors.New("frame too long")
	}
	b := make([]byte, 2, 2+len(body))
	binary.BigEndian.PutUint16(b, uint16(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

// readFrame reads len ‖ body, enforcing min ≤ len ≤ max from the prefix.
func readFrame(r io.Reader, min, max int) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n < min || n > max {
		return nil, fmt.Errorf("frame length %d outside %d..%d", n, min, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

type serverHello struct {
	version, flags uint8
	timeMs         uint64
	ports          []uint16
}

func encodeServerHello(timeMs uint64, ports []uint16) []byte {
	b := make([]byte, 14, 14+2*len(ports))
	b[0] = 1
	binary.BigEndian.PutUint64(b[4:12], timeMs)
	binary.BigEndian.PutUint16(b[12:14], uint16(len(ports)))
	for _, p := range ports {
		b = binary.BigEndian.AppendUint16(b, p)
	}
	return b
}

func decodeServerHello(b []byte) (*serverHello, error) {
	if len(b) < 14 {
		return nil, fmt.Errorf("server hello of %d bytes", len(b))
	}
	h := &serverHello{version: b[0], flags: b[1], timeMs: binary.BigEndian.Uint64(b[4:12])}
	if h.version != 1 {
		return nil, fmt.Errorf("server hello version %d", h.version)
	}
	n := int(binary.BigEndian.Uint16(b[12:14]))
	if 14+2*n > len(b) {
		return nil, fmt.Errorf("server hello lists %d ports in %d bytes", n, len(b))
	}
	for i := 0; i < n; i++ {
		h.ports = append(h.ports, binary.BigEndian.Uint16(b[14+2*i:]))
	}
	return h, nil
}

// noiseConn turns the transport messages into a byte stream for yamux.
// Each Write is cut into messages of at most chunk bytes of plaintext; with
// empty set, an empty message precedes each one (both valid per §4).
type noiseConn struct {
	tcp      net.Conn
	r        *bufio.Reader
	enc, dec *noise.CipherState
	chunk    int
	empty    bool

	wmu   sync.Mutex
	rbuf  []byte
	plain []byte
	err   error
}

func newNoiseConn(tcp net.Conn, r *bufio.Reader, enc, dec *noise.CipherState) *noiseConn {
	return &noiseConn{tcp: tcp, r: r, enc: enc, dec: dec, chunk: maxPlaintext,
		plain: make([]byte, 0, 65535)}
}

func (c *noiseConn) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		body, err := readFrame(c.r, 16, 65535)
		if err != nil {
			c.err = err
			return 0, err
		}
		pt, err := c.dec.Decrypt(c.plain[:0], nil, body)
		if err != nil {
			c.err = fmt.Errorf("transport message did not authenticate: %w", err)
			c.tcp.Close()
			return 0, c.err
		}
		c.rbuf = pt
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *noiseConn) seal(out, pt []byte) ([]byte, error) {
	at := len(out)
	out = append(out, 0, 0)
	out, err := c.enc.Encrypt(out, nil, pt)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(out[at:], uint16(len(out)-at-2))
	return out, nil
}

func (c *noiseConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var out []byte
	var err error
	for off := 0; off < len(p); {
		n := len(p) - off
		if n > c.chunk {
			n = c.chunk
		}
		if c.empty {
			if out, err = c.seal(out, nil); err != nil {
				return 0, err
			}
		}
		if out, err = c.seal(out, p[off:off+n]); err != nil {
			return 0, err
		}
		off += n
		if len(out) >= 256*1024 {
			if _, err := c.tcp.Write(out); err != nil {
				return 0, err
			}
			out = out[:0]
		}
	}
	if len(out) > 0 {
		if _, err := c.tcp.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *noiseConn) Close() error { return c.tcp.Close() }

// clientHandshake runs the initiator over tcp. hello is the client hello.
func clientHandshake(tcp net.Conn, static noise.DHKey, serverPub, psk, hello []byte,
	rng io.Reader) (*noiseConn, *serverHello, error) {
	hs, err := noise.NewHandshakeState(tunnelConfig(true, static, serverPub, psk, rng))
	if err != nil {
		return nil, nil, err
	}
	msg1, _, _, err := hs.WriteMessage(nil, hello)
	if err != nil {
		return nil, nil, err
	}
	tcp.SetDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(tcp, msg1); err != nil {
		return nil, nil, err
	}
	r := bufio.NewReaderSize(tcp, 128*1024)
	msg2, err := readFrame(r, 62, 1024)
	if err == io.EOF { // not one byte: "closes without a word"
		return nil, nil, errHandshakeEOF
	} else if err != nil {
		return nil, nil, err
	}
	payload, enc, dec, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, nil, fmt.Errorf("server reply did not authenticate: %w", err)
	}
	if enc == nil || dec == nil {
		return nil, nil, errors.New("handshake did not complete")
	}
	sh, err := decodeServerHello(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed server hello: %w", err)
	}
	tcp.SetDeadline(time.Time{})
	return newNoiseConn(tcp, r, enc, dec), sh, nil
}

// serverHandshake runs the responder; allowed decides on the client's key.
// A refused or failed handshake returns an error: the caller closes silently.
// mangle, if set, alters the server hello before it is sent.
func serverHandshake(tcp net.Conn, static noise.DHKey, psk []byte,
	allowed func(pub []byte) bool, ports []uint16, mangle func([]byte) []byte) (*noiseConn, []byte, error) {
	hs, err := noise.NewHandshakeState(tunnelConfig(false, static, nil, psk, nil))
	if err != nil {
		return nil, nil, err
	}
	tcp.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReaderSize(tcp, 128*1024)
	msg1, err := readFrame(r, 100, 1024)
	if err != nil {
		return nil, nil, fmt.Errorf("message 1: %w", err)
	}
	hello, _, _, err := hs.ReadMessage(nil, msg1)
	if err != nil {
		return nil, nil, fmt.Errorf("message 1 did not authenticate: %w", err)
	}
	if len(hello) < 1 || hello[0] == 0 {
		return nil, nil, fmt.Errorf("client hello version %v", hello)
	}
	peer := append([]byte(nil), hs.PeerStatic()...)
	if !allowed(peer) {
		return nil, nil, errors.New("client key not allowed")
	}
	sh := encodeServerHello(uint64(time.Now().UnixMilli()), ports)
	if mangle != nil {
		sh = mangle(sh)
	}
	msg2, cs1, cs2, err := hs.WriteMessage(nil, sh)
	if err != nil {
		return nil, nil, err
	}
	if err := writeFrame(tcp, msg2); err != nil {
		return nil, nil, err
	}
	tcp.SetDeadline(time.Time{})
	// Responder: cs1 decrypts (client → server), cs2 encrypts.
	return newNoiseConn(tcp, r, cs2, cs1), peer, nil
}
