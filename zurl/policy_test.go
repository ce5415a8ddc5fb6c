package zurl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func TestPolicyTable(t *testing.T) {
	t.Parallel()
	deflt := newPolicy("allow", nil, []string{"127.*", "10.*", "192.168.*", "*.local"})
	allowOnly := newPolicy("deny", []string{"*.example.com", "api.test"}, []string{"bad.example.com"})
	override := newPolicy("allow", []string{"127.0.0.2"}, []string{"127.*"})
	for _, c := range []struct {
		p    *policy
		host string
		want bool
	}{
		{deflt, "127.0.0.1", false},
		{deflt, "10.1.2.3", false},
		{deflt, "192.168.0.9", false},
		{deflt, "printer.local", false},
		{deflt, "PRINTER.LOCAL", false},
		{deflt, "example.com", true},
		{deflt, "110.1.2.3", true},
		{deflt, "::1", true},
		{allowOnly, "a.example.com", true},
		{allowOnly, "a.b.example.com", true},
		{allowOnly, "example.com", false},
		{allowOnly, "bad.example.com", false},
		{allowOnly, "api.test", true},
		{allowOnly, "api.test.evil", false},
		{override, "127.0.0.2", true},
		{override, "127.0.0.3", false},
	} {
		if got := c.p.allowed(c.host); got != c.want {
			t.Errorf("%+v allowed(%q) = %v, want %v", *c.p, c.host, got, c.want)
		}
	}
}

// Deny rules apply to the uri host, the connect-host and the addresses a
// name resolves to, unless the request says ignore-policies.
func TestDenyPolicy(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits.Add(1)
		backendWrite(t, w, "reached")
	}))
	defer be.Close()
	r := startZurl(t, nil) // default deny list: 127.* and friends
	for i, p := range []*zhttp.Packet{
		{ID: "d1", URI: be.URL + "/"},
		{ID: "d2", URI: "http://example.com/", ConnectHost: "127.0.0.1", ConnectPort: port(be)},
	} {
		p.Method, p.Credits, p.HasCredits = "GET", 100, true
		q := r.request(p)
		if q.Type != zhttp.Error || q.Condition != "policy-violation" || q.Seq != 0 {
			t.Fatalf("%d: %+v", i, q)
		}
	}
	// localhost passes the name check, not the address check.
	q := r.request(&zhttp.Packet{ID: "d3", Method: "GET", URI: strings.Replace(be.URL, "127.0.0.1", "localhost", 1) + "/", Credits: 100, HasCredits: true})
	for q.Type == zhttp.KeepAlive {
		q = r.must("d3", 10*time.Second)
	}
	if q.Type != zhttp.Error || q.Condition != "policy-violation" {
		t.Fatalf("localhost: %+v", q)
	}
	if hits.Load() != 0 {
		t.Fatal("a denied request reached the backend")
	}
	q = r.request(&zhttp.Packet{ID: "ok", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	if code, _, body := r.readResponse(q); code != 200 || string(body) != "reached" {
		t.Fatalf("ignore-policies: %d %q", code, body)
	}
}

// defpolicy=deny with an allow entry lets only that host through.
func TestAllowList(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { backendWrite(t, w, "allowed") }))
	defer be.Close()
	r := startZurl(t, func(c *configs.ZurlConfig) {
		c.DefPolicy, c.Allow, c.Deny = "deny", []string{"127.0.0.*"}, nil
	})
	q := r.request(&zhttp.Packet{ID: "a1", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true})
	if code, _, body := r.readResponse(q); code != 200 || string(body) != "allowed" {
		t.Fatalf("allowed host: %d %q", code, body)
	}
	q = r.request(&zhttp.Packet{ID: "a2", Method: "GET", URI: "http://example.com/", Credits: 100, HasCredits: true})
	if q.Condition != "policy-violation" {
		t.Fatalf("other host: %+v", q)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "secure %s %s", req.Host, req.TLS.ServerName)
	}))
	defer be.Close()
	r := startZurl(t, nil)
	p := r.request(&zhttp.Packet{ID: "t1", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	for p.Type == zhttp.KeepAlive {
		p = r.must(p.ID, 10*time.Second)
	}
	if p.Type != zhttp.Error || p.Condition != "tls-error" {
		t.Fatalf("self-signed without ignore-tls-errors: %+v", p)
	}
	// connect-host: the uri's host stays in Host and SNI.
	p = r.request(&zhttp.Packet{ID: "t2", Method: "GET", URI: "https://example.com/", Credits: 100, HasCredits: true,
		IgnorePolicies: true, IgnoreTLSErrors: true, ConnectHost: "127.0.0.1", ConnectPort: port(be)})
	if code, _, body := r.readResponse(p); code != 200 || string(body) != "secure example.com example.com" {
		t.Fatalf("got %d %q", code, body)
	}
}

// trust-connect-host verifies the certificate against connect-host: the
// test server's certificate names 127.0.0.1 (and example.com), not the
// uri's host, so the request passes only with trust-connect-host.
func TestTrustConnectHost(t *testing.T) {
	t.Parallel()
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { backendWrite(t, w, "trusted") }))
	defer be.Close()
	r := startZurl(t, nil, func(s *Server) { s.http.rootCAs = be.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs })
	base := zhttp.Packet{Method: "GET", URI: "https://origin.test/", Credits: 100, HasCredits: true,
		IgnorePolicies: true, ConnectHost: "127.0.0.1", ConnectPort: port(be)}
	p1 := base
	p1.ID = "u1"
	q := r.request(&p1)
	for q.Type == zhttp.KeepAlive {
		q = r.must(q.ID, 10*time.Second)
	}
	if q.Type != zhttp.Error || q.Condition != "tls-error" {
		t.Fatalf("certificate for another name accepted: %+v", q)
	}
	p2 := base
	p2.ID, p2.TrustConnectHost = "u2", true
	q = r.request(&p2)
	if code, _, body := r.readResponse(q); code != 200 || string(body) != "trusted" {
		t.Fatalf("trust-connect-host: %d %q", code, body)
	}
}

// Reload swaps the policy in place: a host denied before is served after.
func TestReloadPolicy(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { backendWrite(t, w, "now allowed") }))
	defer be.Close()
	r := startZurl(t, nil)
	q := r.request(&zhttp.Packet{ID: "before", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true})
	if q.Condition != "policy-violation" {
		t.Fatalf("before reload: %+v", q)
	}
	cfg := r.srv.cfg
	cfg.Deny = []string{"10.*"}
	if err := r.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.DefPolicy = "maybe"
	if err := r.srv.Reload(bad); err == nil {
		t.Fatal("bad defpolicy accepted")
	}
	q = r.request(&zhttp.Packet{ID: "after", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true})
	if code, _, body := r.readResponse(q); code != 200 || string(body) != "now allowed" {
		t.Fatalf("after reload: %d %q", code, body)
	}
}

// FuzzGlob checks the host matcher against a regexp oracle: `*` is any
// run of characters, everything else literal.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"127.*", "127.0.0.1"}, {"*.local", "printer.local"}, {"*.example.com", "example.com"},
		{"a*b*c", "aXbYc"}, {"**", ""}, {"[::1]", "[::1]"}, {"?", "a"}, {"*x", "xxxx"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		parts := strings.Split(pat, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re, err := regexp.Compile("^(?s:" + strings.Join(parts, ".*") + ")$")
		if err != nil || !utf8.ValidString(pat) || !utf8.ValidString(s) {
			return
		}
		if got, want := glob(pat, s), re.MatchString(s); got != want {
			t.Fatalf("glob(%q, %q) = %v, regexp says %v", pat, s, got, want)
		}
	})
}
