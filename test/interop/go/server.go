package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// errorLog turns net/http's error log (TLS handshake errors among them) into JSON lines.
type errorLog struct{}

func (errorLog) Write(p []byte) (int, error) {
	emit(map[string]any{"serverError": strings.TrimSpace(string(p))})
	return len(p), nil
}

func runServer(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	loadFlags := materialFlags(fs)
	allow := fs.String("allow", "", "comma-separated SPIFFE IDs of the clients to accept (style spiffe)")
	style := fs.String("style", "spiffe", "spiffe: go-spiffe's MTLSServerConfig (RequireAnyClientCert, no CA names, VerifyPeerCertificate); clientcas: ClientCAs + RequireAndVerifyClientCert")
	grpc := fs.Bool("grpc", false, "answer application/grpc requests with a JSON echo service")
	_ = fs.Parse(args)
	m := loadFlags()
	if m.cert == nil {
		fatal("a server needs -cert and -key")
	}

	config := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*m.cert},
		// Called on every handshake, resumed ones too (VerifyPeerCertificate is not).
		VerifyConnection: func(cs tls.ConnectionState) error {
			emit(handshakeEvent("server", cs))
			return nil
		},
	}
	switch *style {
	case "spiffe":
		config.ClientAuth = tls.RequireAnyClientCert
		config.VerifyPeerCertificate = verifyPeer(m.bundle, splitList(*allow))
	case "clientcas":
		config.ClientAuth = tls.RequireAndVerifyClientCert
		config.ClientCAs = m.bundle
	default:
		fatal("unknown style %q", *style)
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal("listen: %v", err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		event := map[string]any{"request": r.URL.Path, "proto": r.Proto, "peer": peerID(r.TLS)}
		if r.TLS != nil {
			event["alpn"] = r.TLS.NegotiatedProtocol
			event["didResume"] = r.TLS.DidResume
		}
		if *grpc && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			event["te"] = r.Header.Get("Te")
			emit(event)
			serveGRPC(w, r)
			return
		}
		emit(event)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"server": "go", "peer": event["peer"], "proto": r.Proto, "path": r.URL.Path})
	})
	// ServeTLS adds h2 to the ALPN list (net/http's built-in HTTP/2 server).
	server := &http.Server{Handler: handler, TLSConfig: config, ErrorLog: log.New(errorLog{}, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		_ = listener.Close()
		os.Exit(0)
	}()
	emit(map[string]any{"listening": listener.Addr().(*net.TCPAddr).Port})
	if err := server.ServeTLS(listener, "", ""); err != nil && err != http.ErrServerClosed {
		fatal("serve: %v", err)
	}
}

// serveGRPC answers one unary call of /meshless.test.Echo/Unary: the reply names the server,
// the client's SPIFFE ID and echoes the request's text.
func serveGRPC(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
	finish := func(code string, message string) {
		w.Header().Set("Grpc-Status", code)
		if message != "" {
			w.Header().Set("Grpc-Message", message)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusOK)
		finish("13", "read request: "+err.Error())
		return
	}
	msgs, err := unframe(body)
	if err != nil || len(msgs) != 1 {
		w.WriteHeader(http.StatusOK)
		finish("13", "want one request message")
		return
	}
	if r.URL.Path != "/meshless.test.Echo/Unary" {
		w.WriteHeader(http.StatusOK)
		finish("12", "unknown method "+r.URL.Path)
		return
	}
	var req struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(msgs[0], &req)
	reply, _ := json.Marshal(map[string]any{"server": "go", "peer": []string{peerID(r.TLS)}, "text": req.Text, "alpn": r.TLS.NegotiatedProtocol})
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(frame(reply))
	finish("0", "")
}
