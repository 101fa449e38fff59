package main

// The tunnel client: IKpsk2 initiator, then a yamux client session.
//
//	peer client [flags] hello               print the server hello, ping once
//	peer client [flags] status PORT [CMD]   print the open request's status byte
//	peer client [flags] pipe PORT           relay stdin/stdout over one stream
//	peer client [flags] echo PORT           a fixed exchange with an echo service
//	peer client [flags] bulk PORT BYTES N   N concurrent streams, BYTES each way
//	                                        through an echo service; sha256 compared
//	peer client [flags] send PORT BYTES     send BYTES, then FIN; print their sha256
//	peer client [flags] recv PORT           read to the remote FIN; print sha256
//	peer client [flags] goaway PORT FILE    a stream across the server's go-away
//	peer client [flags] overrun PORT        overrun a stream's window by one byte

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

var statusText = map[byte]string{
	0x00: "ok",
	0x01: "port not allowed",
	0x02: "connection refused",
	0x03: "unreachable or timed out",
	0xFF: "internal error",
}

func yamuxConfig(verbose bool) *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.KeepAliveInterval = 20 * time.Second
	cfg.ConnectionWriteTimeout = 30 * time.Second
	if !verbose {
		cfg.LogOutput = io.Discard
	}
	return cfg
}

func parsePort(s string) uint16 {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		usage("bad port %q", s)
	}
	return uint16(p)
}

// openRequest opens a stream, sends cmd ‖ port and reads the status byte.
func openRequest(sess *yamux.Session, cmd byte, port uint16) (*yamux.Stream, byte, error) {
	st, err := sess.OpenStream()
	if err != nil {
		return nil, 0, fmt.Errorf("open stream: %w", err)
	}
	req := []byte{cmd, 0, 0}
	binary.BigEndian.PutUint16(req[1:], port)
	if _, err := st.Write(req); err != nil {
		return nil, 0, fmt.Errorf("open request: %w", err)
	}
	st.SetReadDeadline(time.Now().Add(15 * time.Second))
	var status [1]byte
	if _, err := io.ReadFull(st, status[:]); err != nil {
		st.Close()
		return nil, 0, fmt.Errorf("no status byte: %w", err)
	}
	st.SetReadDeadline(time.Time{})
	return st, status[0], nil
}

func connect(port uint16, st *yamux.Stream, status byte, err error) *yamux.Stream {
	if err != nil {
		fail("port %d: %v", port, err)
	}
	if status != statusOK {
		fail("port %d: status 0x%02x: %s", port, status, statusText[status])
	}
	return st
}

func clientMain(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	keyArg := fs.String("key", "", "admin private key (file or base64)")
	spubArg := fs.String("server-pub", "", "server public key (file or base64)")
	pskArg := fs.String("psk", "", "fleet PSK (file or base64)")
	addr := fs.String("addr", "", "server HOST:PORT")
	chunk := fs.Int("chunk", maxPlaintext, "max plaintext bytes per transport message")
	empty := fs.Bool("empty", false, "send an empty transport message before each one")
	helloVersion := fs.Uint("hello-version", 1, "version byte of the client hello")
	helloExtra := fs.Int("hello-extra", 0, "bytes appended to the client hello")
	timeout := fs.Duration("timeout", 120*time.Second, "give up after this long")
	verbose := fs.Bool("v", false, "yamux logs on stderr")
	fs.Parse(args)
	if fs.NArg() < 1 || *addr == "" {
		usage("usage: peer client -key K -server-pub P -psk S -addr HOST:PORT MODE ARGS...")
	}
	if *chunk < 1 || *chunk > maxPlaintext {
		usage("-chunk must be 1..%d", maxPlaintext)
	}
	static := keypair(loadKey("-key", *keyArg))
	spub := loadKey("-server-pub", *spubArg)
	psk := loadKey("-psk", *pskArg)
	time.AfterFunc(*timeout, func() { fail("timed out after %v", *timeout) })

	tcp, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		fail("%s: %v", *addr, err)
	}
	hello := append([]byte{byte(*helloVersion), 0, 0, 0}, make([]byte, *helloExtra)...)
	nc, sh, err := clientHandshake(tcp, static, spub, psk, hello, nil)
	if err != nil {
		tcp.Close()
		fail("%s: %v", *addr, err)
	}
	nc.chunk, nc.empty = *chunk, *empty
	mode, rest := fs.Arg(0), fs.Args()[1:]
	if mode == "overrun" && len(rest) == 1 {
		overrun(nc, parsePort(rest[0]))
		return
	}
	sess, err := yamux.Client(nc, yamuxConfig(*verbose))
	if err != nil {
		fail("yamux: %v", err)
	}
	defer sess.Close()

	switch {
	case mode == "hello" && len(rest) == 0:
		var ports []string
		for _, p := range sh.ports {
			ports = append(ports, strconv.Itoa(int(p)))
		}
		rtt, err := sess.Ping()
		if err != nil {
			fail("yamux ping: %v", err)
		}
		skew := int64(sh.timeMs) - time.Now().UnixMilli()
		fmt.Printf("version=%d flags=%d ports=%s skew_ms=%d ping=ok rtt_ms=%d\n",
			sh.version, sh.flags, strings.Join(ports, ","), skew, rtt.Milliseconds())
	case mode == "status" && (len(rest) == 1 || len(rest) == 2):
		cmd := uint64(1)
		if len(rest) == 2 {
			if cmd, err = strconv.ParseUint(rest[1], 0, 8); err != nil {
				usage("bad cmd %q", rest[1])
			}
		}
		st, status, err := openRequest(sess, byte(cmd), parsePort(rest[0]))
		if err != nil {
			fail("%v", err)
		}
		fmt.Printf("status=0x%02x\n", status)
		if status != statusOK {
			// The server closes the stream after a non-zero status.
			st.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := io.Copy(io.Discard, st)
			if err != nil || n != 0 {
				fail("after status 0x%02x: %d more bytes, %v (want a clean close)", status, n, err)
			}
		}
		st.Close()
	case mode == "pipe" && len(rest) == 1:
		// hashicorp/yamux cannot read a stream after closing it (Close
		// is a half-close on the wire, but Read then returns EOF once its
		// buffer is empty): stdin's end is passed on only once the
		// remote side has closed. See README.md.
		port := parsePort(rest[0])
		st, status, err := openRequest(sess, 1, port)
		st = connect(port, st, status, err)
		go func() {
			if _, err := io.Copy(st, os.Stdin); err != nil {
				fail("stdin → stream: %v", err)
			}
		}()
		if _, err := io.Copy(os.Stdout, st); err != nil {
			fail("stream → stdout: %v", err)
		}
		st.Close()
	case mode == "send" && len(rest) == 2:
		// FIN client → service: the sink logs what it read up to EOF.
		port := parsePort(rest[0])
		size, err := strconv.ParseInt(rest[1], 10, 64)
		if err != nil || size < 0 {
			usage("usage: send PORT BYTES")
		}
		st, status, err := openRequest(sess, 1, port)
		st = connect(port, st, status, err)
		h := sha256.New()
		src := io.TeeReader(io.LimitReader(rand.New(rand.NewSource(1)), size), h)
		if _, err := io.CopyBuffer(st, src, make([]byte, 100*1024)); err != nil {
			fail("write: %v", err)
		}
		st.Close()
		fmt.Printf("sent %d sha256 %x\n", size, h.Sum(nil))
		// Give the FIN time to leave before the session closes.
		time.Sleep(500 * time.Millisecond)
	case mode == "recv" && len(rest) == 1:
		// FIN service → client: read up to the remote's half-close.
		port := parsePort(rest[0])
		st, status, err := openRequest(sess, 1, port)
		st = connect(port, st, status, err)
		h := sha256.New()
		n, err := io.Copy(h, st)
		if err != nil {
			fail("read after %d bytes: %v", n, err)
		}
		st.Close()
		fmt.Printf("received %d sha256 %x\n", n, h.Sum(nil))
	case mode == "echo" && len(rest) == 1:
		port := parsePort(rest[0])
		st, status, err := openRequest(sess, 1, port)
		st = connect(port, st, status, err)
		msg := []byte("postern interop: hello through the tunnel\n")
		for i := 0; i < 5; i++ {
			if _, err := st.Write(msg); err != nil {
				fail("write: %v", err)
			}
			got := make([]byte, len(msg))
			st.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(st, got); err != nil || !bytes.Equal(got, msg) {
				fail("round trip %d: got %q, %v", i, got, err)
			}
		}
		st.Close()
		fmt.Println("echo=ok")
	case mode == "goaway" && len(rest) == 2:
		// One stream open across the server's go-away: print "ready",
		// wait for FILE to exist (the test stops the server meanwhile),
		// then new opens must be refused and the open stream still work.
		port := parsePort(rest[0])
		st, status, err := openRequest(sess, 1, port)
		st = connect(port, st, status, err)
		echoOnce(st, "before go-away")
		fmt.Println("ready")
		for i := 0; ; i++ {
			if _, err := os.Stat(rest[1]); err == nil {
				break
			}
			if i == 600 {
				fail("%s did not appear", rest[1])
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := sess.OpenStream(); err != yamux.ErrRemoteGoAway {
			fail("open after go-away: %v (want %v)", err, yamux.ErrRemoteGoAway)
		}
		echoOnce(st, "after go-away")
		st.Close()
		fmt.Println("goaway=ok")
	case mode == "bulk" && len(rest) == 3:
		port := parsePort(rest[0])
		size, err1 := strconv.ParseInt(rest[1], 10, 64)
		n, err2 := strconv.Atoi(rest[2])
		if err1 != nil || err2 != nil || size < 0 || n < 1 {
			usage("usage: bulk PORT BYTES STREAMS")
		}
		if err := bulk(sess, port, size, n); err != nil {
			fail("%v", err)
		}
	default:
		usage("unknown mode or wrong arguments: %s %v", mode, rest)
	}
}

func echoOnce(st *yamux.Stream, text string) {
	msg := []byte(text)
	if _, err := st.Write(msg); err != nil {
		fail("write: %v", err)
	}
	got := make([]byte, len(msg))
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(st, got); err != nil || !bytes.Equal(got, msg) {
		fail("echo %q: got %q, %v", text, got, err)
	}
	st.SetReadDeadline(time.Time{})
}

// overrun speaks yamux by hand: it opens stream 1 to port, then sends one
// byte more than the 256 KiB window the protocol grants a new stream. The
// server must end the session with GoAway(protocol error = 1).
func overrun(nc *noiseConn, port uint16) {
	hdr := func(typ byte, flags uint16, id, length uint32) []byte {
		h := make([]byte, 12)
		h[1] = typ
		binary.BigEndian.PutUint16(h[2:], flags)
		binary.BigEndian.PutUint32(h[4:], id)
		binary.BigEndian.PutUint32(h[8:], length)
		return h
	}
	const window = 256 * 1024
	req := []byte{1, byte(port >> 8), byte(port)}
	out := append(hdr(0, 1, 1, 3), req...) // data, SYN, stream 1
	out = append(out, hdr(0, 0, 1, window-3+1)...)
	out = append(out, make([]byte, window-3+1)...)
	// The server may decide from the header alone and close while this
	// is still being written: a write error is no failure here.
	go nc.Write(out)
	nc.tcp.SetReadDeadline(time.Now().Add(10 * time.Second))
	h := make([]byte, 12)
	for {
		if _, err := io.ReadFull(nc, h); err != nil {
			fail("no go-away before %v", err)
		}
		typ, id, length := h[1], binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		if h[0] != 0 {
			fail("frame of version %d", h[0])
		}
		if typ == 3 {
			fmt.Printf("goaway code=%d stream=%d\n", length, id)
			if n, err := io.Copy(io.Discard, nc); n != 0 {
				fail("%d bytes after the go-away (%v)", n, err)
			}
			return
		}
		if typ == 0 {
			io.CopyN(io.Discard, nc, int64(length))
		}
	}
}

// bulk sends size pseudo-random bytes on each of n streams at once while
// reading the echo back, and compares SHA-256 of what went and came.
func bulk(sess *yamux.Session, port uint16, size int64, n int) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = bulkStream(sess, port, size, int64(i+1))
		}(i)
	}
	wg.Wait()
	var bad []string
	for i, err := range errs {
		if err != nil {
			bad = append(bad, fmt.Sprintf("stream %d: %v", i, err))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

func bulkStream(sess *yamux.Session, port uint16, size, seed int64) error {
	st, status, err := openRequest(sess, 1, port)
	if err != nil {
		return err
	}
	if status != statusOK {
		return fmt.Errorf("status 0x%02x", status)
	}
	type result struct {
		n   int64
		sum []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		// Exactly size bytes: see pipe about reading after Close.
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(st, size))
		got <- result{n, h.Sum(nil), err}
	}()
	sent := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.New(rand.NewSource(seed)), size), sent)
	if _, err := io.CopyBuffer(st, src, make([]byte, 100*1024)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	r := <-got
	st.Close()
	if r.err != nil {
		return fmt.Errorf("read after %d bytes: %w", r.n, r.err)
	}
	if r.n != size || !bytes.Equal(r.sum, sent.Sum(nil)) {
		return fmt.Errorf("sent %d bytes sha256 %x, received %d bytes sha256 %x",
			size, sent.Sum(nil), r.n, r.sum)
	}
	fmt.Printf("stream %d: %d bytes each way, sha256 %x\n", st.StreamID(), size, r.sum)
	return nil
}
