// Package publishcmd is the pushpin-publish command line: it publishes one
// item to a channel through the handler's HTTP control API, like Pushpin's
// tool of the same name. It lives beside the handler, whose API it speaks,
// and links none of the handler.
package publishcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-publish command line.
func Command() *cobra.Command {
	var (
		endpoint, id, prevID, sender string
		code                         int
		headers                      []string
		hint, closeStream, noStream  bool
		noResponse, noWS             bool
	)
	cmd := &cobra.Command{
		Use:           "pushpin-publish <channel> [content]",
		Short:         "Publish an item to a Pushpin channel.",
		Version:       version.Pushpin,
		Args:          cobra.RangeArgs(1, 2),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			content := ""
			if len(args) > 1 {
				content = args[1]
			}
			item, err := buildItem(args[0], content, id, prevID, sender, code, headers, hint, closeStream, noStream, noResponse, noWS)
			if err != nil {
				return err
			}
			return post(cmd.OutOrStdout(), endpoint, item)
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoint, "spec", "http://localhost:5561", "Control API base URL.")
	f.StringVar(&id, "id", "", "Item id.")
	f.StringVar(&prevID, "prev-id", "", "Previous item id.")
	f.StringVar(&sender, "sender", "", "Sender meta value (for skip-self filters).")
	f.IntVar(&code, "code", 0, "HTTP response code (http-response format).")
	f.StringArrayVarP(&headers, "header", "H", nil, "HTTP response header 'Name: value' (repeatable).")
	f.BoolVar(&hint, "hint", false, "Send a hint instead of content.")
	f.BoolVar(&closeStream, "close", false, "Close streams and WebSockets.")
	f.BoolVar(&noStream, "no-http-stream", false, "Omit the http-stream format.")
	f.BoolVar(&noResponse, "no-http-response", false, "Omit the http-response format.")
	f.BoolVar(&noWS, "no-ws-message", false, "Omit the ws-message format.")
	return cmd
}

func buildItem(channel, content, id, prevID, sender string, code int, headers []string,
	hint, closeStream, noStream, noResponse, noWS bool) (map[string]any, error) {
	formats := map[string]any{}
	line := content
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	switch {
	case hint:
		formats["http-response"] = map[string]any{"action": "hint"}
		formats["http-stream"] = map[string]any{"action": "hint"}
	case closeStream:
		formats["http-stream"] = map[string]any{"action": "close"}
		formats["ws-message"] = map[string]any{"action": "close"}
	default:
		if !noResponse {
			r := map[string]any{"body": line}
			if code != 0 {
				r["code"] = code
			}
			if len(headers) > 0 {
				h := map[string]any{}
				for _, x := range headers {
					name, value, ok := strings.Cut(x, ":")
					if !ok {
						return nil, fmt.Errorf("--header %q: want 'Name: value'", x)
					}
					h[strings.TrimSpace(name)] = strings.TrimSpace(value)
				}
				r["headers"] = h
			}
			formats["http-response"] = r
		}
		if !noStream {
			formats["http-stream"] = map[string]any{"content": line}
		}
		if !noWS {
			formats["ws-message"] = map[string]any{"content": content}
		}
	}
	item := map[string]any{"channel": channel, "formats": formats}
	if id != "" {
		item["id"] = id
	}
	if prevID != "" {
		item["prev-id"] = prevID
	}
	if sender != "" {
		item["meta"] = map[string]any{"sender": sender}
	}
	return item, nil
}

func post(out io.Writer, endpoint string, item map[string]any) error {
	body, err := json.Marshal(map[string]any{"items": []any{item}})
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(strings.TrimSuffix(endpoint, "/")+"/publish/", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	fmt.Fprint(out, string(msg))
	return nil
}
