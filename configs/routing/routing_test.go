package routing

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func parseOK(t *testing.T, text string) *Table {
	t.Helper()
	tb, errs := Parse("routes", []byte(text))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	return tb
}

func TestGrammar(t *testing.T) {
	t.Parallel()
	tb := parseOK(t, `# comment line

  "my host",path_beg="/a b",header=X-A:1,header="X-B: two, three",id="q\"id\\" backend:80,ssl,host=api.internal,sub=c1,sub=c2 other:81,untrusted,insecure,trust_connect_host   # trailing
*,proto=ws localhost:8000,over_http,one_event
id=only,path_beg=/x test
*,path_beg=/z zhttp/tcp://127.0.0.1:10000,ipc_file_mode=755
*,path_beg=/r zhttpreq/ipc:///tmp/req
*,aco,jsonp_mode=basic,debug,no_grip,session,orig_headers,as_host=h:1,path_rem=2,replace_beg=/n,prefix=p-,sig_iss=i,sig_key=k,sockjs=/s,sockjs_as_path=/w test
`)
	rs := tb.Routes()
	if len(rs) != 6 {
		t.Fatalf("%d routes", len(rs))
	}
	r := rs[0]
	if r.Domain != "my host" || r.PathBeg != "/a b" || r.ID != `q"id\` || r.Line != 3 ||
		!reflect.DeepEqual(r.Headers, []Header{{"X-A", "1"}, {"X-B", "two, three"}}) {
		t.Errorf("route 0: %+v", r)
	}
	want0 := Target{Type: TargetHTTP, Host: "backend", Port: 80, SSL: true, HostHeader: "api.internal", Subscriptions: []string{"c1", "c2"}, IPCFileMode: -1}
	want1 := Target{Type: TargetHTTP, Host: "other", Port: 81, Untrusted: true, Insecure: true, TrustConnectHost: true, IPCFileMode: -1}
	if !reflect.DeepEqual(r.Targets, []Target{want0, want1}) {
		t.Errorf("targets %+v", r.Targets)
	}
	if rs[1].Proto != ProtoWS || !rs[1].Targets[0].OverHTTP || !rs[1].Targets[0].OneEvent || rs[1].ID != "*,ws,*,*" {
		t.Errorf("route 1: %+v", rs[1])
	}
	if rs[2].Domain != "" || rs[2].ID != "only" || rs[2].Targets[0].Type != TargetTest {
		t.Errorf("route 2: %+v", rs[2])
	}
	if z := rs[3].Targets[0]; z.Type != TargetZHTTP || z.Spec != "tcp://127.0.0.1:10000" || z.IPCFileMode != 0o755 {
		t.Errorf("zhttp %+v", z)
	}
	if z := rs[4].Targets[0]; z.Type != TargetZHTTPReq || z.Spec != "ipc:///tmp/req" {
		t.Errorf("zhttpreq %+v", z)
	}
	a := rs[5]
	if !a.AutoCrossOrigin || a.JSONPMode != "basic" || a.JSONPDefMethod != "POST" || a.JSONPCallback != "callback" || !a.Debug ||
		!a.NoGrip || !a.Session || !a.OrigHeaders || a.AsHost != "h:1" || a.PathRem != 2 || !a.HasReplaceBeg ||
		a.ReplaceBeg != "/n" || a.Prefix != "p-" || a.SigIss != "i" || a.SigKey != "k" || a.SockJS != "/s" || a.SockJSAsPath != "/w" {
		t.Errorf("props %+v", a)
	}
	if rs[1].JSONPDefMethod != "GET" {
		t.Errorf("default jsonp method %q", rs[1].JSONPDefMethod)
	}
}

func TestBadLinesKeepGoodOnes(t *testing.T) {
	t.Parallel()
	text := "* a:1\n" +
		"*\n" + // no targets
		"\"open test\n" +
		"\"a\\n\" test\n" +
		"*,proto=tcp test\n" +
		"*,ssl=maybe test\n" +
		"path_beg=/x test\n" +
		"* nohost\n" +
		"* h:0\n" +
		"* zhttp/\n" +
		"*,path_rem=-1 test\n" +
		"*,header=bad test\n" +
		"*,sig_iss=x test\n" +
		"* test,ipc_file_mode=9\n" +
		"h.com:80 test\n" +
		"*,path_beg=/ok b:2\n" +
		"*\tb:3\n" // tabs are not separators
	tb, errs := Parse("routes", []byte(text))
	if tb.Len() != 2 {
		t.Errorf("kept %d routes, want 2", tb.Len())
	}
	if len(errs) != 15 {
		t.Fatalf("%d errors: %v", len(errs), errs)
	}
	var le *LineError
	if !errors.As(errs[0], &le) || le.Line != 2 || !errors.Is(errs[0], ErrNoTargets) || errs[0].Error() != "routes:2: no targets" {
		t.Errorf("first error %v", errs[0])
	}
	if !errors.Is(errs[5], ErrNoID) || !strings.HasPrefix(errs[5].Error(), "routes:7:") {
		t.Errorf("no-id error %v", errs[5])
	}
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	tb, errs := Parse("r", []byte("* a:1\n*,id=x,proto=http b:1\nex.com,path_beg=/p c:1\nEX.com,path_beg=/p d:1\nex.com,path_beg=/p,ssl=yes e:1\n*,id=x,path_beg=/q f:1\n*,path_beg=/q g:1\n"))
	if len(errs) != 2 || !errors.Is(errs[0], ErrDuplicateCondition) || !strings.HasPrefix(errs[0].Error(), "r:4: duplicate condition") ||
		!strings.HasPrefix(errs[1].Error(), "r:7:") {
		t.Fatalf("errs %v", errs)
	}
	if _, ok := tb.ByID("x"); ok {
		t.Error("duplicate id x usable")
	}
	if !reflect.DeepEqual(tb.DuplicateIDs(), []string{"x"}) {
		t.Errorf("dup ids %v", tb.DuplicateIDs())
	}
	if r, ok := tb.ByID("ex.com,*,no-ssl,/p"); !ok || r.Targets[0].Host != "e" {
		t.Errorf("default id lookup: %v %v", r, ok)
	}
}

func TestDefaultIDs(t *testing.T) {
	t.Parallel()
	tb := parseOK(t, "* a:1\n*,path_beg=/zreq a:1\nh.com,proto=http,ssl=yes,path_beg=/x a:1\n*,ssl=no a:1\n")
	var ids []string
	for _, r := range tb.Routes() {
		ids = append(ids, r.ID)
	}
	// 1.36 swaps ssl/no-ssl in default ids.
	want := []string{"*,*,*,*", "*,*,*,/zreq", "h.com,http,no-ssl,/x", "*,*,ssl,*"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %q, want %q", ids, want)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tb := parseOK(t, strings.Join([]string{
		"* any:1",
		"*,path_beg=/api api:1",
		"*,path_beg=/api/v2 v2:1",
		"*,proto=ws ws:1",
		"*,ssl=yes,path_beg=/api apis:1",
		"*,path_beg=/a first:1",
		"example.com,path_beg=/only ex:1",
		"[::2] v6:1",
		"id=hidden,path_beg=/ hid:1",
	}, "\n"))
	cases := []struct {
		host, path string
		ws, tls    bool
		want       string // "" = no route
	}{
		{"foo", "/", false, false, "any"},
		{"foo:7999", "/api/x", false, false, "api"},
		{"foo", "/api/v2/x", false, false, "v2"},
		{"foo", "/api/v2/x", true, false, "ws"}, // proto beats longer path
		{"foo", "/api/x", false, true, "apis"},  // ssl beats none at equal length
		{"foo", "/api/v2", false, true, "v2"},   // longer path beats ssl
		{"foo", "/ab", false, false, "first"},
		{"EXAMPLE.COM:80", "/only/x", false, false, "ex"}, // case and port ignored
		{"example.com", "/", false, false, ""},            // no fallback to *
		{"[::1]:7999", "/", false, false, "any"},
		{"[::2]:7999", "/", false, false, "v6"},
	}
	for _, c := range cases {
		r, ok := tb.Match(c.host, c.path, c.ws, c.tls)
		got := ""
		if ok {
			got = r.Targets[0].Host
		}
		if got != c.want {
			t.Errorf("Match(%q,%q,ws=%v,tls=%v) = %q, want %q", c.host, c.path, c.ws, c.tls, got, c.want)
		}
	}
	if r, ok := tb.ByID("hidden"); !ok || r.Targets[0].Host != "hid" {
		t.Errorf("ByID hidden: %v", ok)
	}
	if _, ok := parseOK(t, "a.com b:1\n").Match("other", "/", false, false); ok {
		t.Error("matched without a * route")
	}
}

func TestTieKeepsFileOrder(t *testing.T) {
	t.Parallel()
	tb := parseOK(t, "*,path_beg=/x,ssl=no one:1\n*,path_beg=/y two:1\n*,path_beg=/x three:1\n")
	r, _ := tb.Match("h", "/x", false, false)
	if r.Targets[0].Host != "one" {
		t.Errorf("got %s", r.Targets[0].Host)
	}
}

func TestParseLinesAndUnknownProps(t *testing.T) {
	t.Parallel()
	tb, errs := ParseLines("--route", []string{"*,newprop=1 test,tprop", "bad"})
	if len(errs) != 1 || errs[0].Error() != "--route:2: no targets" {
		t.Errorf("errs %v", errs)
	}
	r := tb.Routes()[0]
	if !reflect.DeepEqual(r.Unknown, []string{"newprop"}) || !reflect.DeepEqual(r.Targets[0].Unknown, []string{"tprop"}) {
		t.Errorf("unknown %v %v", r.Unknown, r.Targets[0].Unknown)
	}
}

func seedFiles(t testing.TB) [][]byte {
	seeds := [][]byte{}
	for _, p := range []string{"../routes", "testdata/debian-routes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzParseRoutes(f *testing.F) {
	for _, s := range seedFiles(f) {
		f.Add(s)
	}
	f.Add([]byte("example.com,path_beg=/api,id=api 10.0.0.5:8080,ssl,host=api.internal localhost:8081\n*,proto=ws localhost:8000,over_http\n\"my \\\"host\" backend:80 # c\nid=x,path_beg=/z zhttp/tcp://127.0.0.1:10000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, errs := Parse("fuzz", data)
		lines := strings.Count(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") + 1
		if tb.Len()+len(errs) > lines {
			t.Fatalf("%d routes + %d errors > %d lines", tb.Len(), len(errs), lines)
		}
		for _, r := range tb.Routes() {
			if len(r.Targets) == 0 || r.ID == "" {
				t.Fatalf("route without targets or id: %+v", r)
			}
			if r.Domain != "" && r.Domain != "*" {
				if got, ok := tb.Match(r.Domain, r.PathBeg, r.Proto == ProtoWS, r.SSL == SSLYes); !ok || got.Domain != r.Domain {
					t.Fatalf("route %+v does not match its own condition (got %+v)", r, got)
				}
			}
		}
	})
}

// Props Pushpin acts on but we do not yet are kept in NotBuilt, once each,
// and the watcher warns about them with file and line.
func TestNotBuiltPropsWarned(t *testing.T) {
	t.Parallel()
	tb, errs := ParseLines("--route", []string{"*,aco,jsonp_mode=basic,aco,debug test,over_http", "x.example test"})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	rs := tb.Routes()
	if got := strings.Join(rs[0].NotBuilt, ","); got != "aco,jsonp_mode,over_http" {
		t.Errorf("NotBuilt %q", got)
	}
	if len(rs[1].NotBuilt) != 0 {
		t.Errorf("plain route NotBuilt %v", rs[1].NotBuilt)
	}
	var buf bytes.Buffer
	NewStatic([]string{"*,session test"}, zerolog.New(&buf))
	if l := buf.String(); !strings.Contains(l, `"file":"--route","line":1,"prop":"session"`) || !strings.Contains(l, "not acted on yet") {
		t.Errorf("log %s", l)
	}
}
