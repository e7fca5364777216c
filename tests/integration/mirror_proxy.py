# A fault-injecting HTTP proxy for mirror.sh (not a test file: tests/run runs *.sh only).
#   python3 mirror_proxy.py PORTFILE UPSTREAM_HOST:PORT CONTROL_FILE LOG_FILE
# Listens on a free 127.0.0.1 port (written to PORTFILE) and forwards every request (the registry API and /token
# alike) to the upstream, streaming the response back. The Host header is passed on unchanged, so the upstream's
# token challenge names this proxy as its realm. CONTROL_FILE switches it, read on every request:
#   empty or absent  forward
#   429              answer 429 TOOMANYREQUESTS with Retry-After: 7
#   500              answer 500 with an error body
#   page2            forward, asking for tag lists in pages of 2 (n=2 added to a GET .../tags/list without n), so
#                    that the upstream pages them with Link headers
# Each request is logged to LOG_FILE as "METHOD PATH STATUS" (STATUS as sent to the client).
import http.client
import http.server
import socket
import sys
import threading

portfile, upstream, control, logfile = sys.argv[1:5]
up_host, up_port = upstream.rsplit(":", 1)
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
log_lock = threading.Lock()


def log(line):
    with log_lock:
        with open(logfile, "a") as f:
            f.write(line + "\n")


def fault():
    try:
        with open(control) as f:
            return f.read().strip()
    except OSError:
        return ""


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        log("%s %s %d" % (self.command, self.path, status))

    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else None
        f = fault()
        if f == "429":
            self.answer(429, [("Content-Type", "application/json"), ("Retry-After", "7")],
                        b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down (injected)"}]}')
            return
        if f == "500":
            self.answer(500, [("Content-Type", "text/plain")], b"injected failure\n")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        path = self.path
        if f == "page2" and self.command == "GET" and "/tags/list" in path and "n=" not in path:
            path += ("&" if "?" in path else "?") + "n=2"
        try:
            c = http.client.HTTPConnection(up_host, int(up_port), timeout=60)
            c.request(self.command, path, body=body, headers=headers)
            r = c.getresponse()
        except OSError as e:
            self.answer(502, [("Content-Type", "text/plain")], ("upstream: %s\n" % e).encode())
            return
        self.send_response(r.status, r.reason)
        length = r.getheader("Content-Length")
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        no_body = self.command == "HEAD" or r.status in (204, 304)
        if length is None and not no_body:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not no_body:
            while True:
                chunk = r.read(256 * 1024)
                if not chunk:
                    break
                self.wfile.write(chunk)
        c.close()
        log("%s %s %d" % (self.command, self.path, r.status))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Proxy)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
