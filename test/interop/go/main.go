// A Go peer for meshless's interop tests, standard library only (crypto/tls, crypto/x509,
// net/http with its built-in HTTP/2). One binary, two roles:
//
//	interop client -cert c.pem -key k.pem -ca bundle.pem -allow spiffe://td/server [-h2]
//	    reads JSON commands on stdin ({"id":1,"op":"get"|"grpc",...}), prints one JSON result per command
//	interop server -cert c.pem -key k.pem -ca bundle.pem -allow spiffe://td/client [-style spiffe|clientcas] [-grpc]
//	    prints {"listening":port}, then one JSON line per handshake and per request
//
// TLS is configured the way go-spiffe's spiffetls/tlsconfig does it (see spiffe.go).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

var outMu sync.Mutex

// emit prints one JSON line on stdout (the test reads them with JsonChild).
func emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		fatal("usage: interop client|server [flags]")
	}
	switch os.Args[1] {
	case "client":
		runClient(os.Args[2:])
	case "server":
		runServer(os.Args[2:])
	default:
		fatal("unknown role %q", os.Args[1])
	}
}
