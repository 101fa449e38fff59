package main

// The tunnel server: IKpsk2 responder, yamux server session, egress to
// allow-listed loopback ports; and a small echo service for the tests.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flynn/noise"
	"github.com/hashicorp/yamux"
)

func serverMain(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	keyArg := fs.String("key", "", "server private key (file or base64)")
	pskArg := fs.String("psk", "", "fleet PSK (file or base64)")
	clientArg := fs.String("client-pub", "", "allowed client public keys, comma-separated (files or base64)")
	listen := fs.String("listen", "", "ADDR:PORT to listen on")
	allow := fs.String("allow", "", "loopback ports streams may reach, comma-separated")
	helloArg := fs.String("hello-ports", "", "ports the server hello lists (default: -allow)")
	forceArg := fs.String("force-status", "", "PORT:STATUS,... answer these ports with STATUS, connecting nowhere")
	helloVersion := fs.Uint("hello-version", 1, "version byte of the server hello")
	helloFlags := fs.Uint("hello-flags", 0, "flags byte and reserved bytes (all three set to it)")
	helloExtra := fs.Int("hello-extra", 0, "bytes appended to the server hello")
	chunk := fs.Int("chunk", maxPlaintext, "max plaintext bytes per transport message")
	empty := fs.Bool("empty", false, "send an empty transport message before each one")
	verbose := fs.Bool("v", false, "yamux logs on stderr")
	fs.Parse(args)
	if *chunk < 1 || *chunk > maxPlaintext {
		usage("-chunk must be 1..%d", maxPlaintext)
	}
	if fs.NArg() != 0 || *listen == "" || *clientArg == "" {
		usage("usage: peer server -key K -psk S -client-pub P[,P...] -listen ADDR:PORT -allow PORT,...")
	}
	static := keypair(loadKey("-key", *keyArg))
	psk := loadKey("-psk", *pskArg)
	var clients [][]byte
	for _, c := range strings.Split(*clientArg, ",") {
		clients = append(clients, loadKey("-client-pub", c))
	}
	var ports []uint16
	if *allow != "" {
		for _, p := range strings.Split(*allow, ",") {
			ports = append(ports, parsePort(p))
		}
	}
	helloPorts := ports
	if *helloArg != "" {
		helloPorts = nil
		for _, p := range strings.Split(*helloArg, ",") {
			helloPorts = append(helloPorts, parsePort(p))
		}
	}
	forced := map[uint16]byte{}
	if *forceArg != "" {
		for _, f := range strings.Split(*forceArg, ",") {
			kv := strings.SplitN(f, ":", 2)
			st, err := strconv.ParseUint(kv[len(kv)-1], 0, 8)
			if len(kv) != 2 || err != nil {
				usage("bad -force-status %q", f)
			}
			forced[parsePort(kv[0])] = byte(st)
		}
	}
	mangle := func(h []byte) []byte {
		h[0] = byte(*helloVersion)
		h[1], h[2], h[3] = byte(*helloFlags), byte(*helloFlags), byte(*helloFlags)
		return append(h, bytes.Repeat([]byte{0xEE}, *helloExtra)...)
	}
	allowed := func(pub []byte) bool {
		for _, c := range clients {
			if bytes.Equal(c, pub) {
				return true
			}
		}
		return false
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("listen %s: %v", *listen, err)
	}
	log.SetFlags(0)
	log.SetPrefix("peer server: ")
	log.Printf("listening on %s, egress %v", ln.Addr(), ports)
	for {
		tcp, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		go serveConn(tcp, static, psk, allowed, mangle, helloPorts, ports, forced, *chunk, *empty, *verbose)
	}
}

func serveConn(tcp net.Conn, static noise.DHKey, psk []byte, allowed func([]byte) bool,
	mangle func([]byte) []byte,
	helloPorts, ports []uint16, forced map[uint16]byte, chunk int, empty, verbose bool) {
	src := tcp.RemoteAddr().String()
	if t, ok := tcp.(*net.TCPConn); ok {
		t.SetNoDelay(true)
		t.SetKeepAlive(true)
	}
	nc, _, err := serverHandshake(tcp, static, psk, allowed, helloPorts, mangle)
	if err != nil {
		// Closed without a word.
		log.Printf("%s: refused: %v", src, err)
		tcp.Close()
		return
	}
	nc.chunk, nc.empty = chunk, empty
	log.Printf("%s: tunnel open", src)
	sess, err := yamux.Server(nc, yamuxConfig(verbose))
	if err != nil {
		log.Printf("%s: yamux: %v", src, err)
		tcp.Close()
		return
	}
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			log.Printf("%s: tunnel closed: %v", src, err)
			return
		}
		go serveStream(src, st, ports, forced)
	}
}

func portAllowed(ports []uint16, p uint16) bool {
	for _, q := range ports {
		if q == p {
			return true
		}
	}
	return false
}

func serveStream(src string, st *yamux.Stream, ports []uint16, forced map[uint16]byte) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(15 * time.Second))
	var req [3]byte
	if _, err := io.ReadFull(st, req[:]); err != nil {
		log.Printf("%s: stream %d: no request: %v", src, st.StreamID(), err)
		return
	}
	st.SetReadDeadline(time.Time{})
	port := binary.BigEndian.Uint16(req[1:])
	status := byte(0xFF)
	var conn net.Conn
	forcedStatus, isForced := forced[port]
	switch {
	case req[0] != 0x01:
	case isForced:
		status = forcedStatus
	case !portAllowed(ports, port):
		status = 0x01
	default:
		var err error
		conn, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1",
			strconv.Itoa(int(port))), 10*time.Second)
		switch {
		case err == nil:
			status = 0x00
		case errors.Is(err, syscall.ECONNREFUSED):
			status = 0x02
		default:
			status = 0x03
		}
	}
	log.Printf("%s: stream %d: cmd %d port %d: status 0x%02x", src, st.StreamID(),
		req[0], port, status)
	if _, err := st.Write([]byte{status}); err != nil || status != 0x00 {
		if conn != nil {
			conn.Close()
		}
		return
	}
	relay(st, conn.(*net.TCPConn))
}

// relay copies both ways; each direction's end is passed on as a
// half-close (yamux FIN, TCP shutdown).
func relay(st *yamux.Stream, tcp *net.TCPConn) {
	defer tcp.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(tcp, st)
		tcp.CloseWrite()
		close(done)
	}()
	io.Copy(st, tcp)
	st.Close()
	<-done
}

// serviceMain runs a loopback test service: echo (echoes to EOF, then
// half-closes), source (sends BYTES pseudo-random bytes, seed 1, then
// closes), sink (reads to EOF and logs "received N sha256 X").
func serviceMain(kind string, args []string) {
	fs := flag.NewFlagSet(kind, flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:7777", "ADDR:PORT")
	size := fs.Int64("bytes", 1<<20, "source: bytes to send")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("listen %s: %v", *listen, err)
	}
	fmt.Fprintf(os.Stderr, "peer %s: listening on %s\n", kind, ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		go func(c *net.TCPConn) {
			defer c.Close()
			switch kind {
			case "echo":
				// Plain reads and writes (no splice of a socket into itself).
				io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 64*1024))
				c.CloseWrite()
			case "source":
				io.Copy(c, io.LimitReader(rand.New(rand.NewSource(1)), *size))
			case "sink":
				h := sha256.New()
				n, err := io.Copy(h, c)
				fmt.Printf("received %d sha256 %x (%v)\n", n, h.Sum(nil), err)
			}
		}(c.(*net.TCPConn))
	}
}
