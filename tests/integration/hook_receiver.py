"""A webhook receiver for tests/integration/webhooks.sh: logs every POST as a JSON line (path, headers, body, the
status it answered) to LOG, and answers as the file MODEDIR/mode-<path> says: "ok" (200, the default), "fail" (500),
"stall" (sleeps STALL seconds, then 200: the sender has given up by then). Prints its port on stdout."""
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log_path, mode_dir, stall = sys.argv[1], sys.argv[2], float(sys.argv[3])
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        name = self.path.strip("/") or "root"
        try:
            with open(os.path.join(mode_dir, "mode-" + name)) as f:
                mode = f.read().strip()
        except OSError:
            mode = "ok"
        status = {"ok": 200, "fail": 500, "stall": 200}.get(mode, 200)
        if mode == "stall":
            time.sleep(stall)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        rec = {"t": time.time(), "path": name, "mode": mode, "status": status, "headers": dict(self.headers.items()),
               "body": parsed}
        with lock, open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        try:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
print(srv.server_address[1], flush=True)
srv.serve_forever()
