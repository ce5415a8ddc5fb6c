package proxy

import (
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func TestRequestHeaderRules(t *testing.T) {
	up, _ := grip.ParseKey("upstream", "")
	tok, _ := up.Sign("other", time.Now().Add(time.Hour))
	sigKey, _ := grip.ParseKey("changeme", "")
	signer, _ := grip.NewSigner("pushpin", sigKey)
	base := hdr("Host", "h:1", "Connection", "x", "Keep-Alive", "1", "Accept-Encoding", "gzip",
		"Content-Encoding", "br", "Transfer-Encoding", "chunked", "Expect", "100-continue",
		"Grip-Last", "c; last-id=1", "X-Forwarded-For", "1.1.1.1, 2.2.2.2", "X-Forwarded-For", "3.3.3.3",
		"X-Forwarded-Proto", "http", "Pushpin-Route", "r", "X-Keep", "v")
	cases := []struct {
		name    string
		rw      rewriter
		in      rewriteIn
		headers zhttp.Headers
		want    []string // name=value, "Grip-Sig=*" matches any token
	}{
		{"defaults", rewriter{xff: xffRule{truncate: -1}}, rewriteIn{peer: "9.9.9.9", signer: signer}, base,
			[]string{"Host=h:1", "X-Forwarded-Proto=http", "Pushpin-Route=r", "X-Keep=v", "Grip-Sig=*", "Grip-Feature=" + grip.Feature,
				"X-Forwarded-For=1.1.1.1, 2.2.2.2, 3.3.3.3"}},
		{"truncate+append, proto", rewriter{xff: xffRule{truncate: 1, append: true}, xfp: configs.XFPBoth, acceptPushpinRoute: true},
			rewriteIn{peer: "9.9.9.9", https: true, signer: signer}, base,
			[]string{"Host=h:1", "X-Keep=v", "Grip-Sig=*", "Grip-Feature=" + grip.Feature, "X-Forwarded-For=3.3.3.3, 9.9.9.9",
				"X-Forwarded-Proto=https", "X-Forwarded-Protocol=https"}},
		{"truncate:0 no grip, host and route headers", rewriter{xff: xffRule{truncate: 0}, xfp: configs.XFPProtoOnly},
			rewriteIn{host: "backend:80", headers: []routing.Header{{Name: "X-Keep", Value: ""}, {Name: "X-Add", Value: "a"}}}, base,
			[]string{"Host=backend:80", "Pushpin-Route=r", "X-Add=a"}},
		{"trusted keeps Grip-*", rewriter{xff: xffRule{truncate: -1}, xffTrusted: xffRule{truncate: -1, append: true}, upstream: up},
			rewriteIn{peer: "9.9.9.9", signer: signer, trusted: true},
			hdr("Host", "h", "Grip-Sig", tok, "Grip-Last", "c; last-id=1"),
			[]string{"Host=h", "Grip-Sig=" + tok, "Grip-Last=c; last-id=1", "X-Forwarded-For=9.9.9.9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.in.trusted != c.rw.isTrusted(c.headers) {
				t.Fatalf("isTrusted = %v", !c.in.trusted)
			}
			orig := c.headers.Clone()
			out, err := c.rw.request(c.headers, &c.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(c.want) {
				t.Fatalf("got %v\nwant %v", out, c.want)
			}
			for i, w := range c.want {
				got := out[i].Name + "=" + out[i].Value
				if w == "Grip-Sig=*" {
					if out[i].Name != "Grip-Sig" || sigKey.Verify(out[i].Value, time.Now()) != nil {
						t.Fatalf("header %d: %q is not a valid Grip-Sig", i, got)
					}
					continue
				}
				if got != w {
					t.Fatalf("header %d: %q, want %q (all: %v)", i, got, w, out)
				}
			}
			for i := range orig {
				if orig[i] != c.headers[i] {
					t.Fatal("input headers modified")
				}
			}
		})
	}
}

func TestParseXFF(t *testing.T) {
	r, err := parseXFF("x", []string{"truncate:2", " append"})
	if err != nil || r.truncate != 2 || !r.append {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := parseXFF("x", []string{"bogus"}); err == nil {
		t.Fatal("bogus rule accepted")
	}
	if got := r.apply([]string{"a", "b", "c"}, "p"); len(got) != 3 || got[0] != "b" || got[2] != "p" {
		t.Fatalf("%v", got)
	}
}

func TestURIHelpers(t *testing.T) {
	s, h, rest, ok := splitURI("HTTP://Example.com:80?x=1")
	if !ok || s != "http" || h != "Example.com:80" || rest != "/?x=1" {
		t.Fatal(s, h, rest, ok)
	}
	if hostOnly("[::1]:80") != "[::1]" || hostOnly("a:1") != "a" || pathOf("/a?b") != "/a" {
		t.Fatal("host/path")
	}
	r := &routing.Route{PathBeg: "/api", ReplaceBeg: "/v2", HasReplaceBeg: true}
	if got := rewritePath("/api/x?q", r); got != "/v2/x?q" {
		t.Fatal(got)
	}
	if got := rewritePath("/api/x", &routing.Route{PathRem: 4}); got != "/x" {
		t.Fatal(got)
	}
	if u := newUUID(); len(u) != 36 || u[14] != '4' {
		t.Fatal(u)
	}
}
