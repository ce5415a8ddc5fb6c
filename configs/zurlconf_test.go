package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestZurlConfRoundTrip(t *testing.T) {
	t.Parallel()
	p := writeConf(t, minimal, nil)
	id := 2
	c := mustLoad(t, p, Options{ID: &id})
	if err := os.MkdirAll(c.Global.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := c.WriteZurlConf()
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(filepath.Dir(p), "run", "p2-zurl.conf") {
		t.Errorf("path %q", path)
	}
	z, err := LoadZurlConf(path)
	if err != nil {
		t.Fatal(err)
	}
	if z.InSpec != "ipc://"+filepath.Join(c.Global.RunDir, "p2-zurl-in") || z.InStreamSpec != c.Proxy.ZurlOutStreamSpecs[0] ||
		z.OutSpec != c.Proxy.ZurlInSpecs[0] || !reflect.DeepEqual(z, c.ZurlConfig()) {
		t.Errorf("round trip: %+v", z)
	}
	odd := ZurlConfig{InstanceID: "a b", InSpec: "ipc:///x,y", DefPolicy: "deny", Allow: []string{"@at", "a,b", " sp "},
		Deny: []string{`q"uote\`}, MaxOpenRequests: 1, BufferSize: 2, Timeout: 3, InHWM: 4, OutHWM: 5}
	z2, err := ParseZurlConf("odd", odd.Render())
	if err != nil || !reflect.DeepEqual(odd, z2) {
		t.Errorf("odd round trip: %v\n%+v\n%+v", err, odd, z2)
	}
}

// The real 1.36 template, with its Jinja-style fields filled, parses to the
// values our renderer writes.
func TestZurlConfMatchesPushpinTemplate(t *testing.T) {
	t.Parallel()
	tpl, err := os.ReadFile("testdata/zurl.conf.template")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("{{ rundir }}", "/r", "{{ ipc_prefix }}", "pushpin-").Replace(string(tpl))
	got, err := ParseZurlConf("zurl.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadBytes("pushpin.conf", "/", []byte(minimal+"[global]\nrundir=/r\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := c.ZurlConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("template %+v\nours %+v", got, want)
	}
}

func TestZurlConfErrors(t *testing.T) {
	t.Parallel()
	_, err := ParseZurlConf("z.conf", []byte("[General]\nin_spec=bogus\ndefpolicy=maybe\ntimeout=x\n"))
	for _, want := range []string{`z.conf: [General] in_spec: "bogus"`, `defpolicy: "maybe"`, `timeout: "x" is not an integer`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
