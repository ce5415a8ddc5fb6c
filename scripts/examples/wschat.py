#!/usr/bin/env python3
"""A chat room over WebSocket-over-HTTP, with Python's standard library only.

The proxy keeps every client's WebSocket open and turns its activity into
short POSTs to this backend (Content-Type: application/websocket-events).
The backend subscribes each connection to the channel "room" on OPEN, and
republishes every TEXT message to the room through the publish API, so every
member receives it, whichever instance of this backend handled the POST.

    python3 wschat.py [port] [publish-url]
    (defaults: 8000, http://127.0.0.1:5561/publish/)
    routes:  * localhost:8000,over_http
"""
import json
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
PUBLISH = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:5561/publish/"
ROOM = "room"


def parse_events(body):
    """Yields (type, content) from an application/websocket-events body."""
    i = 0
    while i < len(body):
        end = body.index(b"\r\n", i)
        line = body[i:end].decode()
        i = end + 2
        typ, _, hexlen = line.partition(" ")
        content = b""
        if hexlen:
            n = int(hexlen, 16)
            content = body[i:i + n]
            i += n + 2
        yield typ, content


def event(typ, content=b""):
    if not content:
        return typ.encode() + b"\r\n"
    return b"%s %x\r\n%s\r\n" % (typ.encode(), len(content), content)


def publish(text):
    item = {"channel": ROOM, "formats": {"ws-message": {"content": text}}}
    req = urllib.request.Request(PUBLISH, data=json.dumps({"items": [item]}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


class Chat(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cid = self.headers.get("Connection-Id", "?")
        name = self.headers.get("Meta-Name") or cid[:8]
        out, extra = b"", {}
        for typ, content in parse_events(body):
            if typ == "OPEN":
                out += event("OPEN")
                # GRIP mode without a message prefix: c: messages are for the proxy.
                extra["Sec-WebSocket-Extensions"] = 'grip; message-prefix=""'
                extra["Set-Meta-Name"] = name
                sub = json.dumps({"type": "subscribe", "channel": ROOM})
                out += event("TEXT", b"c:" + sub.encode())
                out += event("TEXT", b"welcome, " + name.encode())
            elif typ == "TEXT":
                text = content.decode("utf-8", "replace")
                if text.startswith("/nick "):
                    name = text[6:].strip() or name
                    extra["Set-Meta-Name"] = name
                    out += event("TEXT", b"you are now " + name.encode())
                else:
                    publish("%s: %s" % (name, text))
            elif typ == "CLOSE":
                out += event("CLOSE", content)
        self.send_response(200)
        self.send_header("Content-Type", "application/websocket-events")
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", PORT), Chat)
    print("wschat listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()
