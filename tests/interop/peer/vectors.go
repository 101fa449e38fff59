package main

// The worked example of docs/PROTOCOL-tunnel.md §6, byte for byte, run
// through flynn/noise with the example's fixed ephemeral keys.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/flynn/noise"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func rep(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// newHS: a tunnel handshake whose ephemeral private key is eph.
func newHS(initiator bool, static noise.DHKey, peer, psk, eph []byte) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(tunnelConfig(initiator, static, peer, psk, bytes.NewReader(eph)))
}

func vectorsMain() {
	ok := true
	expect := func(what string, got, want []byte) {
		if bytes.Equal(got, want) {
			fmt.Printf("ok - %s\n", what)
			return
		}
		fmt.Printf("not ok - %s\n  got  %x\n  want %x\n", what, got, want)
		ok = false
	}

	client, server := keypair(rep(0x11)), keypair(rep(0x22))
	psk := rep(0x33)
	expect("client static public", client.Public,
		unhex("7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"))
	expect("server static public", server.Public,
		unhex("0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20"))
	expect("client ephemeral public", keypair(rep(0x44)).Public,
		unhex("ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b"))
	expect("server ephemeral public", keypair(rep(0x55)).Public,
		unhex("38ab664bd86f77d7e66bdd9ae0792913a94fd8b33a1260027e4b46c1f4884c67"))

	ini, err1 := newHS(true, client, server.Public, psk, rep(0x44))
	res, err2 := newHS(false, server, nil, psk, rep(0x55))
	if err1 != nil || err2 != nil {
		fail("handshake state: %v %v", err1, err2)
	}
	msg1, _, _, err := ini.WriteMessage(nil, unhex("01000000"))
	if err != nil {
		fail("write message 1: %v", err)
	}
	var wire bytes.Buffer
	writeFrame(&wire, msg1)
	expect("message 1 on the wire (102 bytes)", wire.Bytes(), unhex(
		"0064"+
			"ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b"+
			"3b6f1324884f7dfcb616f1440bce015ad114bc97a5052c5972a42150ca66244e"+
			"be5e0955cf80e509b8ea0f63a0d1253e"+
			"4fd41251"+
			"4a753be22956598994ce7596d502a954"))
	hello1, _, _, err := res.ReadMessage(nil, msg1)
	if err != nil {
		fail("read message 1: %v", err)
	}
	expect("client hello", hello1, unhex("01000000"))
	expect("client static key as the responder sees it", res.PeerStatic(), client.Public)

	sh := encodeServerHello(1800000000000, []uint16{22, 8443})
	expect("server hello plaintext (18 bytes)", sh,
		unhex("01000000000001a3185c5000000200 1620fb"))
	msg2, rcs1, rcs2, err := res.WriteMessage(nil, sh)
	if err != nil || rcs1 == nil {
		fail("write message 2: %v", err)
	}
	wire.Reset()
	writeFrame(&wire, msg2)
	expect("message 2 on the wire (68 bytes)", wire.Bytes(), unhex(
		"0042"+
			"38ab664bd86f77d7e66bdd9ae0792913a94fd8b33a1260027e4b46c1f4884c67"+
			"d87414d26e118eacc0f89233e603911c857e"+
			"760be4cbcbf6c86fe7738886625ee61a"))
	sh2, ics1, ics2, err := ini.ReadMessage(nil, msg2)
	if err != nil || ics1 == nil {
		fail("read message 2: %v", err)
	}
	decoded, err := decodeServerHello(sh2)
	if err != nil || decoded.timeMs != 1800000000000 || len(decoded.ports) != 2 ||
		decoded.ports[0] != 22 || decoded.ports[1] != 8443 {
		fmt.Printf("not ok - server hello decodes: %+v %v\n", decoded, err)
		ok = false
	} else {
		fmt.Println("ok - server hello decodes: time 1800000000000, ports 22 8443")
	}
	expect("handshake hash h (initiator)", ini.ChannelBinding(),
		unhex("85156d109115274fae295802f65745f65a1f9c0e9df885b842cedeea68ea4381"))
	expect("handshake hash h (responder)", res.ChannelBinding(),
		unhex("85156d109115274fae295802f65745f65a1f9c0e9df885b842cedeea68ea4381"))

	// k1 and k2 through their first messages (flynn/noise keeps keys private).
	c2s := newNoiseConn(nil, nil, ics1, nil)
	frame, _ := c2s.seal(nil, unhex("010016"))
	expect("first transport message client → server (k1, nonce 0)", frame,
		unhex("0013 0a1fe0 0dd830d36081934ebc82eb9390aa7d9c"))
	pt, err := rcs1.Decrypt(nil, nil, frame[2:])
	expect("  ...which the responder's first CipherState opens", pt, unhex("010016"))
	if err != nil {
		ok = false
	}
	s2c := newNoiseConn(nil, nil, rcs2, nil)
	frame, _ = s2c.seal(nil, unhex("00"))
	expect("first transport message server → client (k2, nonce 0)", frame,
		unhex("0011 4d 5806afc7b92b1c593d76a89f5a86fe88"))
	pt, err = ics2.Decrypt(nil, nil, frame[2:])
	expect("  ...which the initiator's second CipherState opens", pt, unhex("00"))
	if err != nil {
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
}
