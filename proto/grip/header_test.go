package grip

import (
	"reflect"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func TestSplitList(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string
	}{
		{"a, b ,c", []string{"a", "b", "c"}},
		{`a; x="1,2", b`, []string{`a; x="1,2"`, "b"}},
		{`a; x="q\",z", b`, []string{`a; x="q\",z"`, "b"}},
		{"a,,b", []string{"a", "", "b"}},
		{"", nil},
		{`a, b; x="open, c`, []string{"a", `b; x="open, c`}},
		{`a; x="\`, []string{`a; x="\`}},
	}
	for _, c := range cases {
		if got := SplitList(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitList(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in    string
		first bool
		want  Params
		ok    bool
	}{
		{"chan", false, Params{{Name: "chan", Value: ""}}, true},
		{" chan ; prev-id = 7 ", false, Params{{Name: "chan", Value: ""}, {Name: "prev-id", Value: "7"}}, true},
		{`c; filter=skip-self; filter="build-id"`, false, Params{{Name: "c", Value: ""}, {Name: "filter", Value: "skip-self"}, {Name: "filter", Value: "build-id"}}, true},
		{`c; x="a\"b\\c"`, false, Params{{Name: "c", Value: ""}, {Name: "x", Value: `a"b\c`}}, true},
		{`c; x="a;b"; y=2`, false, Params{{Name: "c", Value: ""}, {Name: "x", Value: "a;b"}, {Name: "y", Value: "2"}}, true},
		{`c; x="ab"junk; y=2`, false, Params{{Name: "c", Value: ""}, {Name: "x", Value: "ab"}, {Name: "y", Value: "2"}}, true},
		{`c; flag; y`, false, Params{{Name: "c", Value: ""}, {Name: "flag", Value: ""}, {Name: "y", Value: ""}}, true},
		{`"q;x"; y=1`, false, Params{{Name: `"q`, Value: ""}, {Name: `x"`, Value: ""}, {Name: "y", Value: "1"}}, true},
		{`c; x="open`, false, nil, false},
		{`c; x="a\`, false, nil, false},
		{"user=alice", true, Params{{Name: "user", Value: "alice"}}, true},
		{"", true, nil, true},
		{"", false, Params{{Name: "", Value: ""}}, true},
		{"<http://x/y?a=b>; rel=next; timeout=3", false, Params{{Name: "<http://x/y?a=b>", Value: ""}, {Name: "rel", Value: "next"}, {Name: "timeout", Value: "3"}}, true},
	}
	for _, c := range cases {
		got, ok := ParseParams(c.in, c.first)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseParams(%q, %v) = %q, %v; want %q, %v", c.in, c.first, got, ok, c.want, c.ok)
		}
	}
}

func TestParamsGetCaseInsensitive(t *testing.T) {
	t.Parallel()
	p, _ := ParseParams("c; Prev-ID=5", false)
	if v, ok := p.Get("prev-id"); !ok || v != "5" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	if _, ok := p.Get("filter"); ok {
		t.Fatal("absent param found")
	}
}

func TestListAndSingleHeaders(t *testing.T) {
	t.Parallel()
	h := zhttp.Headers{
		{Name: "grip-channel", Value: "a, b; prev-id=1"},
		{Name: "Grip-Channel", Value: `c; x="bad, d`},
		{Name: "GRIP-CHANNEL", Value: "e"},
		{Name: "Grip-Keep-Alive", Value: "first, not split"},
		{Name: "Grip-Keep-Alive", Value: "second"},
	}
	var names []string
	for _, p := range ListParams(h, "Grip-Channel", false) {
		names = append(names, p.First())
	}
	// The unterminated quote swallows the rest of its header line and that
	// item is skipped; the next header line still counts.
	if want := []string{"a", "b", "e"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("channels = %q, want %q", names, want)
	}
	if got := SingleParams(h, "grip-keep-alive").First(); got != "first, not split" {
		t.Fatalf("single = %q", got)
	}
	if SingleParams(h, "Grip-Hold") != nil {
		t.Fatal("absent single header parsed")
	}
	if got := SingleParams(zhttp.Headers{{Name: "Grip-Keep-Alive", Value: `x; format="raw`}}, "Grip-Keep-Alive"); got != nil {
		t.Fatalf("unparsable single header = %q", got)
	}
}

func FuzzParseHeaderValue(f *testing.F) {
	for _, s := range []string{
		"test", "c1, c2; prev-id=7; filter=skip-self; filter=build-id",
		`:\n\n; format=cstring; timeout=20`, `ka\n; format=cstring; timeout=2; mode=interval`,
		"</next?n=1>; rel=next; timeout=3", `grip; message-prefix=""`, `grip; message-prefix="m:"`,
		"user=alice, id_format=%(c)s", `a; x="1,\"2"`, `a; x="open`, `a, "b`, "Content-Type, X-A",
		"304 Not Modified Custom",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, item := range SplitList(s) {
			if item != trim(item) {
				t.Fatalf("untrimmed item %q", item)
			}
			for _, first := range []bool{false, true} {
				p, ok := ParseParams(item, first)
				if !ok {
					continue
				}
				if !first && len(p) == 0 {
					t.Fatalf("no first part for %q", item)
				}
				for _, x := range p {
					if x.Name != trim(x.Name) {
						t.Fatalf("untrimmed name %q in %q", x.Name, item)
					}
				}
			}
		}
	})
}
