package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// material is what a peer loads from the files the test wrote.
type material struct {
	cert   *tls.Certificate // nil: present no certificate
	bundle *x509.CertPool
}

// materialFlags declares -cert, -key and -ca on fs; the returned function loads them (after fs.Parse).
func materialFlags(fs *flag.FlagSet) func() material {
	certFile := fs.String("cert", "", "certificate chain PEM (a client without it presents no certificate)")
	keyFile := fs.String("key", "", "private key PEM")
	caFile := fs.String("ca", "", "trust bundle PEM")
	return func() material { return loadMaterial(*certFile, *keyFile, *caFile) }
}

func loadMaterial(certFile, keyFile, caFile string) material {
	var m material
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			fatal("load key pair: %v", err)
		}
		m.cert = &c
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fatal("read bundle: %v", err)
	}
	m.bundle = x509.NewCertPool()
	if !m.bundle.AppendCertsFromPEM(pem) {
		fatal("no certificate in %s", caFile)
	}
	return m
}

// spiffeIDOf returns the single URI SAN of an X509-SVID leaf.
func spiffeIDOf(leaf *x509.Certificate) (string, error) {
	if len(leaf.URIs) != 1 {
		return "", fmt.Errorf("certificate has %d URI SANs, want exactly 1", len(leaf.URIs))
	}
	id := leaf.URIs[0].String()
	if !strings.HasPrefix(id, "spiffe://") {
		return "", fmt.Errorf("URI SAN %q is not a SPIFFE ID", id)
	}
	return id, nil
}

// verifyPeer does what go-spiffe's x509svid.ParseAndVerify + an authorizer do: parse the raw
// chain, verify it against the bundle (any extended key usage), take the leaf's SPIFFE ID and
// authorize it. allow is a list of exact SPIFFE IDs.
func verifyPeer(bundle *x509.CertPool, allow []string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("peer presented no certificate")
		}
		certs := make([]*x509.Certificate, 0, len(raw))
		for _, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("parse peer certificate: %w", err)
			}
			certs = append(certs, c)
		}
		leaf := certs[0]
		if leaf.IsCA {
			return errors.New("leaf certificate is a CA")
		}
		intermediates := x509.NewCertPool()
		for _, c := range certs[1:] {
			intermediates.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: bundle, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("x509svid: could not verify leaf certificate: %w", err)
		}
		id, err := spiffeIDOf(leaf)
		if err != nil {
			return err
		}
		for _, a := range allow {
			if a == id {
				return nil
			}
		}
		return fmt.Errorf("unexpected ID %q", id)
	}
}

// peerID is the SPIFFE ID of a connection's peer, or "" when it has none.
func peerID(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	id, err := spiffeIDOf(cs.PeerCertificates[0])
	if err != nil {
		return ""
	}
	return id
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// handshakeEvent describes one completed handshake (full or resumed).
func handshakeEvent(side string, cs tls.ConnectionState) map[string]any {
	return map[string]any{
		"handshake": side,
		"didResume": cs.DidResume,
		"alpn":      cs.NegotiatedProtocol,
		"version":   tlsVersion(cs.Version),
		"peer":      peerID(&cs),
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
