// Command peer is an independent implementation of postern's knock and
// tunnel protocols, written from docs/PROTOCOL.md and
// docs/PROTOCOL-tunnel.md alone over github.com/flynn/noise and
// github.com/hashicorp/yamux, to test the C implementation against.
//
//	peer knock   [flags] HOST PORT          send one knock (UDP)
//	peer client  [flags] MODE ARGS...       tunnel initiator (see client.go)
//	peer server  [flags]                    tunnel responder
//	peer echo    -listen ADDR               loopback test services: echo (half-close
//	peer source  -listen ADDR -bytes N      aware), a source of N bytes, a sink
//	peer sink    -listen ADDR               that prints what it read up to EOF
//	peer pubkey                             private key (base64) on stdin → public
//	peer vectors                            check the worked example of PROTOCOL-tunnel.md
//
// Keys and the PSK are standard base64 of 32 bytes, as in key files.
// Exit status: 0 success, 1 failure (one line on stderr), 2 usage.
package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"
)

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "peer: "+format+"\n", a...)
	os.Exit(1)
}

func usage(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "peer: "+format+"\n", a...)
	os.Exit(2)
}

func decodeKey(text string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, err
	}
	if len(k) != 32 {
		return nil, errors.New("not 32 bytes")
	}
	return k, nil
}

// loadKey reads a key from a file, or takes the argument as base64 when it
// names no file.
func loadKey(what, arg string) []byte {
	if arg == "" {
		usage("%s is required", what)
	}
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		text = string(b)
	}
	k, err := decodeKey(text)
	if err != nil {
		fail("%s: %v", what, err)
	}
	return k
}

func keypair(priv []byte) noise.DHKey {
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		fail("private key: %v", err)
	}
	return noise.DHKey{Private: priv, Public: pub}
}

func main() {
	if len(os.Args) < 2 {
		usage("usage: peer knock|client|server|echo|source|sink|pubkey|vectors ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "knock":
		knockMain(args)
	case "client":
		clientMain(args)
	case "server":
		serverMain(args)
	case "echo", "source", "sink":
		serviceMain(os.Args[1], args)
	case "pubkey":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fail("stdin: %v", err)
		}
		k, err := decodeKey(string(b))
		if err != nil {
			fail("private key: %v", err)
		}
		fmt.Println(base64.StdEncoding.EncodeToString(keypair(k).Public))
	case "vectors":
		vectorsMain()
	default:
		usage("unknown command %q", os.Args[1])
	}
}
