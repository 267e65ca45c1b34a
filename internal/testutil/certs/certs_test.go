package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testutil/certs"
)

func TestHandshakeMTLS(t *testing.T) {
	p := certs.New(t, "")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type result struct {
		cn  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{cn: tc.ConnectionState().PeerCertificates[0].Subject.CommonName}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: p.ClientTLS()}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dialing with client cert: %v", err)
	}
	c.Close()
	if r := <-done; r.err != nil || r.cn != "sluice-client" {
		t.Fatalf("server side: cn=%q err=%v", r.cn, r.err)
	}
}

func TestHandshakeWithoutClientCertFails(t *testing.T) {
	p := certs.New(t, "")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- c.(*tls.Conn).Handshake()
	}()

	cfg := p.ClientTLS()
	cfg.Certificates = nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		// TLS 1.3: the client learns of the rejection on its first read.
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("client without certificate was accepted")
	}
	if serr := <-done; serr == nil {
		t.Fatal("server accepted a client without certificate")
	}
}

func TestLegacyEncryptedKeyDecrypts(t *testing.T) {
	p := certs.New(t, "")
	raw, err := os.ReadFile(p.ClientKeyEncFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	//nolint:staticcheck // SA1019: testing the legacy format on purpose.
	if block == nil || !x509.IsEncryptedPEMBlock(block) {
		t.Fatalf("%s is not an encrypted PEM block", p.ClientKeyEncFile)
	}
	//nolint:staticcheck // SA1019
	if _, err := x509.DecryptPEMBlock(block, []byte("wrong")); err == nil {
		t.Fatal("decrypting with a wrong password succeeded")
	}
	//nolint:staticcheck // SA1019
	der, err := x509.DecryptPEMBlock(block, []byte(p.Password))
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParseECPrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	assertClientKey(t, p, key)
}

// TestPKCS8EncryptedKeyOpenSSL checks the PBES2 encoding against OpenSSL,
// since Go's standard library has no decoder for it.
func TestPKCS8EncryptedKeyOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	p := certs.New(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, openssl, "pkey", "-in", p.ClientKeyPKCS8File,
		"-passin", "pass:"+p.Password).Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	block, _ := pem.Decode(out)
	if block == nil {
		t.Fatalf("openssl output is not PEM: %q", out)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	assertClientKey(t, p, key.(*ecdsa.PrivateKey))

	if err := exec.CommandContext(ctx, openssl, "pkey", "-in", p.ClientKeyPKCS8File,
		"-passin", "pass:wrong", "-noout").Run(); err == nil {
		t.Fatal("openssl decrypted with a wrong password")
	}
}

func assertClientKey(t *testing.T, p *certs.PKI, key *ecdsa.PrivateKey) {
	t.Helper()
	cert := p.ClientTLS().Certificates[0]
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("decrypted key does not match the client certificate")
	}
}
