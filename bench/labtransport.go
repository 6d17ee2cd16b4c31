package bench

// Forcing a lab group onto a transport: a lab net is a netlab profile
// with, optionally, transport=T (--viewer-net 10:udp=blocked,transport=tcp,
// --publisher-net only-tcp=443+8800,transport=turn-tls). The lab's relayd
// always runs the embedded TURN server (UDP and TCP on 3478, TLS on 443
// with a certificate made for the run); a Go participant uses it only
// when its transport says so. Without transport=, Go participants gather
// UDP host candidates only, as ever (cross-node links and bench viewers
// keep UDP). The profile's firewall is what makes a network like the one
// the transport is for; transport= is what makes the participant take
// that path even where others would work (so that the three can be
// measured side by side on perfect links).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/netlab"
)

// The lab server's TURN ports: the usual 3478, and 443 for TLS (what a
// network that only lets HTTPS out leaves open).
const (
	labTURNPort    = 3478
	labTURNTLSPort = 443
)

// labTransports are the values of transport=.
var labTransports = []string{"udp", "tcp", "turn-udp", "turn-tcp", "turn-tls"}

// splitLabNet reads a lab net: a netlab profile, and transport=T among its
// fields (any place).
func splitLabNet(s string) (netlab.Profile, string, error) {
	var keep []string
	transport := ""
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		if k != "transport" {
			keep = append(keep, f)
			continue
		}
		ok := false
		for _, t := range labTransports {
			ok = ok || v == t
		}
		if !ok || transport != "" {
			return netlab.Profile{}, "", fmt.Errorf("%q: transport=%q: want one of %s", s, v, strings.Join(labTransports, ", "))
		}
		transport = v
	}
	p, err := netlab.ParseProfile(strings.Join(keep, ","))
	return p, transport, err
}

// labNetString is a lab net's canonical form.
func labNetString(p netlab.Profile, transport string) string {
	if transport == "" {
		return p.String()
	}
	if p == (netlab.Profile{}) {
		return "transport=" + transport
	}
	return p.String() + ",transport=" + transport
}

// applyTransport makes a Go participant's SettingEngine and client options
// take transport: "tcp" gathers TCP only (ICE-TCP to relayd's TCP port);
// "turn-*" gathers relayed candidates only, through the join result's TURN
// URL of that transport. "" and "udp" leave both as they are.
func applyTransport(se *webrtc.SettingEngine, opts *client.Options, transport string) {
	switch transport {
	case "tcp":
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	case "turn-udp", "turn-tcp", "turn-tls":
		keep := func(u string) bool { return strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=udp") }
		switch transport {
		case "turn-tcp":
			keep = func(u string) bool { return strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=tcp") }
		case "turn-tls":
			keep = func(u string) bool { return strings.HasPrefix(u, "turns:") }
		}
		opts.ICEServers = func(l []client.ICEServer) []webrtc.ICEServer { return client.FilterICEServers(l, keep) }
		opts.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
}

// pcTransport is how a PeerConnection's selected pair reaches the server:
// "udp", "tcp" (ICE-TCP) or "turn" (a relayed candidate); "" without one.
func pcTransport(pc *webrtc.PeerConnection) string {
	if pc == nil || pc.SCTP() == nil {
		return ""
	}
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil {
		return ""
	}
	switch {
	case pair.Local.Typ == webrtc.ICECandidateTypeRelay:
		return "turn"
	case pair.Local.Protocol == webrtc.ICEProtocolTCP:
		return "tcp"
	}
	return "udp"
}

// labTURN writes a self-signed certificate for the lab's server address
// into dir and returns relayd's TURN flags and the certificate's file
// (the children trust it through SSL_CERT_FILE).
func labTURN(dir string) (args []string, caFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "relaybench lab TURN"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{netlab.ServerAddr().AsSlice()},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	caFile, keyFile := filepath.Join(dir, "turn-cert.pem"), filepath.Join(dir, "turn-key.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, "", err
	}
	return []string{
		"--turn-port", strconv.Itoa(labTURNPort), "--turn-tls-port", strconv.Itoa(labTURNTLSPort),
		"--turn-cert", caFile, "--turn-key", keyFile,
	}, caFile, nil
}
