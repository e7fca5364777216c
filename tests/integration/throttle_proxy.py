# A slow TCP proxy for replicate.sh (not a test file: tests/run runs *.sh only).
#   python3 throttle_proxy.py PORTFILE TARGET_HOST:PORT BYTES_PER_SECOND
# Listens on a free 127.0.0.1 port (written to PORTFILE) and forwards every connection to the target, the bytes
# from the client to the target at most BYTES_PER_SECOND, the answers at full speed: an upload through it takes
# long enough for a test to interrupt it in the middle.
import socket
import sys
import threading
import time

portfile, target, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = target.rsplit(":", 1)


def pipe(src, dst, limit):
    start, sent = time.monotonic(), 0
    try:
        while True:
            data = src.recv(65536 if not limit else min(65536, max(1024, limit // 20)))
            if not data:
                break
            dst.sendall(data)
            if limit:
                sent += len(data)
                ahead = sent / limit - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    try:
        up = socket.create_connection((host, int(port)))
    except OSError:
        client.close()
        return
    threading.Thread(target=pipe, args=(client, up, rate), daemon=True).start()
    threading.Thread(target=pipe, args=(up, client, 0), daemon=True).start()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(64)
with open(portfile + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os

os.rename(portfile + ".tmp", portfile)
while True:
    c, _ = ls.accept()
    serve(c)
