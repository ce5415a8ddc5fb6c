package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zeromq/goczmq"

	"github.com/pushpin-go/pushpin/internal/stackconf"
)

// zurlRig is the fake proxy in front of a real zurl.
type zurlRig struct {
	push   *goczmq.Sock // zurl-in: first packets
	rtr    *goczmq.Sock // zurl-in-stream: later packets, to zurl's identity
	sub    *goczmq.Sock // zurl-out: everything from zurl
	rec    *recorder
	origin string // backend base URL
}

// backend's handlers ignore write errors: they mean the client went away,
// which the capture's client side reports.
func backend() (*http.Server, net.Listener, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Seen-Host", r.Host)
		_, _ = io.WriteString(w, "hello from backend\n")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		f, _ := w.(http.Flusher)
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i)
			if f != nil {
				f.Flush()
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "Host: %s\n", r.Host)
		for _, k := range keys {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header[k], ", "))
		}
	})
	mux.HandleFunc("/gz", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = io.WriteString(zw, "gzipped body\n") // into a bytes.Buffer: cannot fail
		zw.Close()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		_, _ = w.Write(b.Bytes())
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s %q\n", r.Method, r.URL, b)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }() // ends with ErrServerClosed; a failure shows as failed requests
	return srv, l, nil
}

func captureZurl(ctx context.Context, tmp, out string) error {
	srv, l, err := backend()
	if err != nil {
		return err
	}
	defer srv.Close()

	dir := filepath.Join(tmp, "zurl")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "zurl.conf")
	base := "ipc://" + dir
	if err := os.WriteFile(conf, []byte(stackconf.ZurlConf(base+"/zurl-in", base+"/zurl-in-stream", base+"/zurl-out")), 0o644); err != nil {
		return err
	}
	p, err := startProc(dir, "zurl", "--config="+conf, "--verbose")
	if err != nil {
		return err
	}
	defer p.stop()
	if err := waitFor(ctx, p, 5*time.Second, "zurl sockets", fileExists(filepath.Join(dir, "zurl-out"))); err != nil {
		return err
	}
	r := &zurlRig{rec: newRecorder(out, "zurl"), origin: "http://" + l.Addr().String()}
	if r.push, err = newSock(goczmq.Push, base+"/zurl-in", ""); err != nil {
		return err
	}
	defer r.push.Destroy()
	if r.rtr, err = newSock(goczmq.Router, base+"/zurl-in-stream", proxyID); err != nil {
		return err
	}
	defer r.rtr.Destroy()
	if r.sub, err = newSock(goczmq.Sub, base+"/zurl-out", ""); err != nil {
		return err
	}
	defer r.sub.Destroy()
	r.sub.SetSubscribe(proxyID + " ")
	time.Sleep(300 * time.Millisecond) // see condure.go: SUB subscriptions propagate asynchronously

	refused, err := freePort()
	if err != nil {
		return err
	}
	cases := []struct {
		tc      string
		uri     string
		method  string
		body    string
		ignore  bool
		credits int
	}{
		{"small", r.origin + "/small?q=1", "GET", "", true, 200000},
		{"stream", r.origin + "/stream", "GET", "", true, 10},
		{"post", r.origin + "/echo", "POST", "a=1&b=2", true, 200000},
		{"headers", r.origin + "/headers", "GET", "", true, 200000},
		{"gzip", r.origin + "/gz", "GET", "", true, 200000},
		{"refused", "http://127.0.0.1:" + strconv.Itoa(refused) + "/", "GET", "", true, 200000},
		{"policy", r.origin + "/small", "GET", "", false, 200000},
	}
	for i, c := range cases {
		log.Printf("--- zurl/%s", c.tc)
		if err := r.exchange(c.tc, "cap-"+strconv.Itoa(i), c.method, c.uri, c.body, c.ignore, c.credits); err != nil {
			return fmt.Errorf("%s: %w", c.tc, err)
		}
	}
	return nil
}

// exchange sends one request the way pushpin-proxy does and records
// everything zurl answers until the response completes or fails.
func (r *zurlRig) exchange(tc, id, method, uri, body string, ignore bool, credits int) error {
	host := strings.SplitN(strings.TrimPrefix(uri, "http://"), "/", 2)[0]
	headers := hdr("Host", host, "User-Agent", "curl/7.88.1", "Accept", "*/*")
	if strings.HasSuffix(uri, "/headers") {
		// What does zurl itself add, drop or replace?
		headers = hdr("Host", host, "Accept-Encoding", "identity", "Connection", "keep-alive", "X-Forwarded-For", "1.2.3.4")
	}
	req := od{"from", proxyID, "id", id, "seq", 0, "ext", multi, "method", method, "uri", uri,
		"headers", headers, "stream", true, "credits", credits}
	if body != "" {
		req = od{"from", proxyID, "id", id, "seq", 0, "ext", multi, "method", method, "uri", uri,
			"headers", hdr("Host", host, "Content-Type", "application/x-www-form-urlencoded", "Content-Length", strconv.Itoa(len(body))),
			"body", body, "stream", true, "credits", credits}
	}
	if ignore {
		req = append(req, "ignore-policies", true)
	}
	p, err := decodePacket(zhttpFrame("", req), false)
	if err != nil {
		return err
	}
	if err := sendMsg(r.push, p.raw); err != nil {
		return err
	}
	if err := r.rec.save(tc, "sent", p); err != nil {
		return err
	}
	outSeq := 1
	for {
		msg, err := recvMsg(r.sub, recvWait)
		if err != nil {
			return fmt.Errorf("waiting for zurl: %w", err)
		}
		if len(msg) != 1 {
			return fmt.Errorf("zurl PUB message has %d frames, want 1", len(msg))
		}
		in, err := decodePacket(msg[0], true)
		if err != nil {
			return err
		}
		if err := r.rec.save(tc, "recv", in); err != nil {
			return err
		}
		switch in.kind() {
		case "error", "cancel":
			return nil
		case "response", "data":
			if !in.has("more") {
				return nil
			}
			// Grant what was consumed, as the proxy does, so streaming continues.
			if n := len(in.str("body")); n > 0 {
				c := od{"from", proxyID, "id", id, "seq", outSeq, "type", "credit", "credits", n}
				outSeq++
				cp, err := decodePacket(zhttpFrame("", c), false)
				if err != nil {
					return err
				}
				if err := sendMsg(r.rtr, []byte(in.str("from")), nil, cp.raw); err != nil {
					return fmt.Errorf("routing credit to %q: %w", in.str("from"), err)
				}
				if err := r.rec.save(tc, "sent", cp); err != nil {
					return err
				}
			}
		}
	}
}
