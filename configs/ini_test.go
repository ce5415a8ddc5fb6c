package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestINIValues(t *testing.T) {
	t.Parallel()
	src := "top=1\n" +
		"[general]\nalso_top=2\n" +
		"[s]\n" +
		"plain = hello world  \n" +
		"list=a, b ,c\n" +
		"quoted=\"x,y\"\n" +
		"mixed=\"a, \",b\n" +
		"escaped=tab\\there\\x41\\101\\\\\n" +
		"comment=before;after\n" +
		"qcomment=\"in;side\"\n" +
		"empty=\n" +
		"spaces=   \n" +
		"multi=\"line1\nline2\"\n" +
		"cont=ab\\\ncd\n" +
		"at=@@foo\n" +
		"ba=@ByteArray(raw)\n" +
		"dup=first\n" +
		"dup=second\n" +
		"pct%20key=v\n" +
		"# hash=comment\n" +
		"; semi=comment\n" +
		"  ; indented=comment\n" +
		"# odd \" quote in comment\n" +
		"after=ok\n"
	f := ParseINI("t.conf", []byte(src))
	get := func(sec, key string) string {
		t.Helper()
		v, ok := f.Get(sec, key)
		if !ok {
			t.Fatalf("%s/%s missing", sec, key)
		}
		return v
	}
	cases := map[[2]string]string{
		{"", "top"}: "1", {"General", "also_top"}: "2",
		{"s", "plain"}: "hello world", {"s", "list"}: "a, b ,c", {"s", "quoted"}: "x,y",
		{"s", "escaped"}: "tab\there" + "AA\\", {"s", "comment"}: "before", {"s", "qcomment"}: "in;side",
		{"s", "empty"}: "", {"s", "spaces"}: "", {"s", "multi"}: "line1\nline2", {"s", "cont"}: "abcd",
		{"s", "at"}: "@foo", {"s", "ba"}: "raw", {"s", "dup"}: "second", {"s", "pct key"}: "v", {"s", "after"}: "ok",
	}
	for k, want := range cases {
		if got := get(k[0], k[1]); got != want {
			t.Errorf("%s/%s = %q, want %q", k[0], k[1], got, want)
		}
	}
	for _, key := range []string{"# hash", "hash", "; semi", "semi", "indented"} {
		if _, ok := f.Get("s", key); ok {
			t.Errorf("comment key %q was parsed", key)
		}
	}
	lists := map[string][]string{
		"list": {"a", "b", "c"}, "quoted": {"x,y"}, "mixed": {"a, ", "b"}, "empty": nil, "plain": {"hello world"},
	}
	for key, want := range lists {
		got, _ := f.List("s", key)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("List(s/%s) = %q, want %q", key, got, want)
		}
	}
	if len(f.Warnings) != 0 {
		t.Errorf("unexpected warnings %q", f.Warnings)
	}
}

func TestINIWarnings(t *testing.T) {
	t.Parallel()
	f := ParseINI("w.conf", []byte("[a]\nhttp_port 8000\n[b\nk=v\n"))
	if len(f.Warnings) != 2 {
		t.Fatalf("warnings = %q, want 2", f.Warnings)
	}
	if f.Warnings[0] != `w.conf:2: ignoring line without '=': "http_port 8000"` {
		t.Errorf("warning = %q", f.Warnings[0])
	}
	if v, _ := f.Get("b", "k"); v != "v" {
		t.Errorf("section without ']' not taken as Qt does: %q", v)
	}
}

func TestINILineNumbers(t *testing.T) {
	t.Parallel()
	f := ParseINI("n", []byte("[a]\n\nx=\"1\n2\"\ny=3\r\nz=4\n"))
	for key, want := range map[string]int{"x": 3, "y": 5, "z": 6} {
		if got, _ := f.Line("a", key); got != want {
			t.Errorf("line of %s = %d, want %d", key, got, want)
		}
	}
}

// fuzzSeeds are real INI files: ours, Debian's pushpin.conf and internal.conf
// and zurl's template, copied into testdata so they exist without the package.
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{ExamplePushpinConf, InternalConf}
	paths, _ := filepath.Glob("testdata/*")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzParseINI(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("[s]\nk=\"a\\x41,\\1\",b\\\n;c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ini := ParseINI("fuzz", data)
		for _, sec := range ini.Sections() {
			for _, k := range ini.Keys(sec) {
				v, ok := ini.Get(sec, k)
				items, ok2 := ini.List(sec, k)
				if !ok || !ok2 {
					t.Fatalf("key %s/%s listed but not found", sec, k)
				}
				if len(items) == 1 && items[0] != v {
					t.Fatalf("single item %q differs from whole value %q", items[0], v)
				}
			}
		}
		// Whatever we read must survive a render/parse round trip.
		if z, err := ParseZurlConf("fuzz", data); err == nil {
			z2, err := ParseZurlConf("again", z.Render())
			if err != nil || !reflect.DeepEqual(z, z2) {
				t.Fatalf("zurl round trip: %v\n%+v\n%+v", err, z, z2)
			}
		}
	})
}
