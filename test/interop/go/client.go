package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

type command struct {
	ID      int             `json:"id"`
	Op      string          `json:"op"` // "get" or "grpc"
	URL     string          `json:"url"`
	Method  string          `json:"method"`  // grpc: /pkg.Service/Method
	Message json.RawMessage `json:"message"` // grpc: the request message (JSON)
	Fresh   bool            `json:"fresh"`   // grpc: on a new connection (closed after the call), resuming a cached session
}

func runClient(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	loadFlags := materialFlags(fs)
	allow := fs.String("allow", "", "comma-separated SPIFFE IDs of the servers to accept")
	h2 := fs.Bool("h2", false, "offer HTTP/2 (ALPN h2, http/1.1) for get; without it ALPN offers http/1.1 only")
	maxTLS := fs.String("max-tls", "1.3", "highest TLS version: 1.2 or 1.3")
	_ = fs.Parse(args)
	m := loadFlags()

	// go-spiffe's MTLSClientConfig: our SVID, no host-name check, the bundle and authorizer in
	// VerifyPeerCertificate. One session cache for every connection of this process.
	base := &tls.Config{
		MinVersion:            tls.VersionTLS12,
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verifyPeer(m.bundle, splitList(*allow)),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m.cert == nil {
				return &tls.Certificate{}, nil
			}
			return m.cert, nil
		},
		MaxVersion:         map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}[*maxTLS],
		ClientSessionCache: tls.NewLRUClientSessionCache(16),
		VerifyConnection: func(cs tls.ConnectionState) error {
			emit(handshakeEvent("client", cs))
			return nil
		},
	}
	// get: a new connection per request, so that the second one can resume the first one's session.
	getConfig := base.Clone()
	getTransport := &http.Transport{TLSClientConfig: getConfig, DisableKeepAlives: true, ForceAttemptHTTP2: *h2}
	if !*h2 {
		getConfig.NextProtos = []string{"http/1.1"}
	}
	// grpc: HTTP/2 only (net/http adds h2 and http/1.1 to ALPN with ForceAttemptHTTP2).
	grpcTransport := &http.Transport{TLSClientConfig: base.Clone(), ForceAttemptHTTP2: true}
	freshTransport := &http.Transport{TLSClientConfig: base.Clone(), ForceAttemptHTTP2: true, DisableKeepAlives: true}
	getClient := &http.Client{Transport: getTransport, Timeout: 10 * time.Second}
	grpcClient := &http.Client{Transport: grpcTransport, Timeout: 10 * time.Second}
	freshClient := &http.Client{Transport: freshTransport, Timeout: 10 * time.Second}

	emit(map[string]any{"ready": true})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			emit(map[string]any{"error": "bad command: " + err.Error()})
			continue
		}
		var result map[string]any
		switch c.Op {
		case "get":
			result = doGet(getClient, c)
		case "grpc":
			if c.Fresh {
				result = doGRPC(freshClient, c)
			} else {
				result = doGRPC(grpcClient, c)
			}
		default:
			result = map[string]any{"ok": false, "error": "unknown op " + c.Op}
		}
		result["id"] = c.ID
		emit(result)
	}
}

func describe(resp *http.Response) map[string]any {
	out := map[string]any{"ok": true, "status": resp.StatusCode, "proto": resp.Proto}
	if resp.TLS != nil {
		out["alpn"] = resp.TLS.NegotiatedProtocol
		out["didResume"] = resp.TLS.DidResume
		out["version"] = tlsVersion(resp.TLS.Version)
		out["peer"] = peerID(resp.TLS)
	}
	return out
}

// roundTrip sends req and reads the whole answer; failed is the result to report when it could not.
func roundTrip(client *http.Client, req *http.Request) (resp *http.Response, body []byte, failed map[string]any) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, map[string]any{"ok": false, "error": err.Error()}
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, map[string]any{"ok": false, "error": "read body: " + err.Error()}
	}
	return resp, body, nil
}

func doGet(client *http.Client, c command) map[string]any {
	req, err := http.NewRequest(http.MethodGet, c.URL, nil)
	if err != nil {
		return map[string]any{"ok": false, "error": err.Error()}
	}
	resp, body, failed := roundTrip(client, req)
	if failed != nil {
		return failed
	}
	out := describe(resp)
	out["body"] = string(body)
	return out
}

// doGRPC makes one unary gRPC call over net/http's HTTP/2 client: POST, application/grpc,
// te: trailers, one length-prefixed message; the status comes in the trailers (or, for a
// trailers-only answer, in the headers).
func doGRPC(client *http.Client, c command) map[string]any {
	req, err := http.NewRequest(http.MethodPost, c.URL+c.Method, bytes.NewReader(frame(c.Message)))
	if err != nil {
		return map[string]any{"ok": false, "error": err.Error()}
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, body, failed := roundTrip(client, req)
	if failed != nil {
		return failed
	}
	out := describe(resp)
	if resp.ProtoMajor != 2 {
		out["ok"] = false
		out["error"] = fmt.Sprintf("gRPC needs HTTP/2; the server answered %s (ALPN %q)", resp.Proto, out["alpn"])
		return out
	}
	out["contentType"] = resp.Header.Get("Content-Type")
	status := resp.Trailer.Get("Grpc-Status")
	message := resp.Trailer.Get("Grpc-Message")
	if status == "" {
		status = resp.Header.Get("Grpc-Status")
		message = resp.Header.Get("Grpc-Message")
	}
	code, err := strconv.Atoi(status)
	if err != nil {
		out["ok"] = false
		out["error"] = fmt.Sprintf("no grpc-status (got %q)", status)
		return out
	}
	out["grpcStatus"] = code
	out["grpcMessage"] = message
	msgs, err := unframe(body)
	if err != nil {
		out["ok"] = false
		out["error"] = err.Error()
		return out
	}
	replies := make([]json.RawMessage, 0, len(msgs))
	for _, m := range msgs {
		replies = append(replies, json.RawMessage(m))
	}
	out["messages"] = replies
	return out
}
