package publishcmd

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The command posts one item to <spec>/publish/ with the formats its flags
// ask for, and prints the API's answer.
func TestCommandPostsOneItem(t *testing.T) {
	t.Parallel()
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/publish/" || r.Method != http.MethodPost {
			http.Error(w, "wrong endpoint", http.StatusNotFound)
			return
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "Published\n")
	}))
	defer srv.Close()
	cmd := Command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--spec=" + srv.URL, "--id=7", "--code=201", "-H", "X-A: b", "news", "hello"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Published\n" {
		t.Errorf("printed %q", out.String())
	}
	item := got["items"].([]any)[0].(map[string]any)
	formats := item["formats"].(map[string]any)
	resp := formats["http-response"].(map[string]any)
	if item["channel"] != "news" || item["id"] != "7" || resp["body"] != "hello\n" || resp["code"] != float64(201) ||
		resp["headers"].(map[string]any)["X-A"] != "b" ||
		formats["http-stream"].(map[string]any)["content"] != "hello\n" ||
		formats["ws-message"].(map[string]any)["content"] != "hello" {
		t.Fatalf("posted item %v", item)
	}
}

// An error answer from the API is the command's error, with its text.
func TestCommandReportsRejection(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Invalid format", http.StatusBadRequest)
	}))
	defer srv.Close()
	cmd := Command()
	cmd.SetOut(io.Discard)
	cmd.SetArgs([]string{"--spec=" + srv.URL, "news", "hello"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "Invalid format") {
		t.Fatalf("err %v, want the status and text", err)
	}
}

func TestBuildItemRejectsHeaderWithoutColon(t *testing.T) {
	t.Parallel()
	if _, err := buildItem("c", "x", "", "", "", 0, []string{"NoColon"}, false, false, false, false, false); err == nil || !strings.Contains(err.Error(), "NoColon") {
		t.Fatalf("err %v, want the bad header named", err)
	}
}

func TestBuildItemCloseAndHint(t *testing.T) {
	t.Parallel()
	closeItem, _ := buildItem("c", "", "", "", "", 0, nil, false, true, false, false, false)
	f := closeItem["formats"].(map[string]any)
	if f["http-stream"].(map[string]any)["action"] != "close" || f["http-response"] != nil {
		t.Errorf("--close formats %v", f)
	}
	hint, _ := buildItem("c", "", "", "", "", 0, nil, true, false, false, false, false)
	f = hint["formats"].(map[string]any)
	if f["http-response"].(map[string]any)["action"] != "hint" || f["http-stream"].(map[string]any)["action"] != "hint" {
		t.Errorf("--hint formats %v", f)
	}
}
