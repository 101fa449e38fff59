package main

// Knock protocol v1 (docs/PROTOCOL.md, "Knock protocol v1").

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/blake2s"
)

const (
	knockLen      = 145
	knockPrologue = "postern/knock/1"
)

// mac1 = keyed BLAKE2s-128 (RFC 7693 keyed mode, not HMAC) with key
// BLAKE2s-256("postern/mac1" ‖ server public key ‖ PSK), over bytes 0..128.
func knockMac1(serverPub, psk, packet []byte) []byte {
	in := append([]byte("postern/mac1"), serverPub...)
	key := blake2s.Sum256(append(in, psk...))
	h, err := blake2s.New128(key[:])
	if err != nil {
		fail("blake2s: %v", err)
	}
	h.Write(packet)
	return h.Sum(nil)
}

// buildKnock makes the 145-byte datagram. rng supplies the ephemeral key.
func buildKnock(static noise.DHKey, serverPub, psk []byte, tsMs uint64,
	target net.IP, openSeconds, flags uint16, rng io.Reader) ([]byte, error) {
	payload := make([]byte, 32)
	binary.BigEndian.PutUint64(payload[0:8], tsMs)
	if target != nil {
		copy(payload[8:24], target.To16())
	}
	binary.BigEndian.PutUint16(payload[24:26], openSeconds)
	binary.BigEndian.PutUint16(payload[26:28], flags)
	// payload[28:32]: reserved, zero

	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           suite,
		Random:                rng,
		Pattern:               noise.HandshakeX,
		Initiator:             true,
		Prologue:              []byte(knockPrologue),
		PresharedKey:          psk,
		PresharedKeyPlacement: 1,
		StaticKeypair:         static,
		PeerStatic:            serverPub,
	})
	if err != nil {
		return nil, err
	}
	pkt := []byte{1}
	pkt, _, _, err = hs.WriteMessage(pkt, payload)
	if err != nil {
		return nil, err
	}
	if len(pkt) != 129 {
		return nil, fmt.Errorf("noise message is %d bytes, want 128", len(pkt)-1)
	}
	return append(pkt, knockMac1(serverPub, psk, pkt)...), nil
}

func knockMain(args []string) {
	fs := flag.NewFlagSet("knock", flag.ExitOnError)
	keyArg := fs.String("key", "", "admin private key (file or base64)")
	spubArg := fs.String("server-pub", "", "server public key (file or base64)")
	pskArg := fs.String("psk", "", "fleet PSK (file or base64)")
	targetArg := fs.String("target", "", "address to open (default: the packet's source)")
	open := fs.Uint("open", 0, "open_seconds (0: server default)")
	flagsField := fs.Uint("flags", 0, "flags field (0 in v1)")
	offset := fs.Int64("offset-ms", 0, "add to the timestamp")
	bind := fs.String("bind", "", "source address")
	write := fs.String("write", "", "also write the datagram to this file")
	replay := fs.String("replay", "", "send this file's bytes instead of a new knock")
	fs.Parse(args)
	if fs.NArg() != 2 {
		usage("usage: peer knock -key K -server-pub P -psk S [options] HOST PORT")
	}
	var pkt []byte
	if *replay != "" {
		var err error
		if pkt, err = os.ReadFile(*replay); err != nil {
			fail("%v", err)
		}
	} else {
		static := keypair(loadKey("-key", *keyArg))
		spub := loadKey("-server-pub", *spubArg)
		psk := loadKey("-psk", *pskArg)
		var target net.IP
		if *targetArg != "" {
			if target = net.ParseIP(*targetArg); target == nil {
				usage("bad -target %q", *targetArg)
			}
		}
		ts := uint64(time.Now().UnixMilli() + *offset)
		var err error
		pkt, err = buildKnock(static, spub, psk, ts, target, uint16(*open),
			uint16(*flagsField), nil)
		if err != nil {
			fail("knock: %v", err)
		}
		if !bytes.Equal(pkt[129:], knockMac1(spub, psk, pkt[:129])) || len(pkt) != knockLen {
			fail("internal: bad knock")
		}
		if *write != "" {
			if err := os.WriteFile(*write, pkt, 0600); err != nil {
				fail("%v", err)
			}
		}
	}
	dst := net.JoinHostPort(fs.Arg(0), fs.Arg(1))
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		fail("%s: %v", dst, err)
	}
	var laddr *net.UDPAddr
	if *bind != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(*bind)}
		if laddr.IP == nil {
			usage("bad -bind %q", *bind)
		}
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		fail("%s: %v", dst, err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		fail("send to %s: %v", dst, err)
	}
}
