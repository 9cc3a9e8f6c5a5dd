"""A process with a name of its own holding connections, for the DELETE tests.

Usage: kill_peer.py NAME serve PORT...          listens on each 127.0.0.1:PORT, accepts all
       kill_peer.py NAME connect PORT:COUNT...  COUNT connections to each 127.0.0.1:PORT
       (either may add udp:PORT: a UDP socket bound to 127.0.0.1:PORT)
Sets its comm to NAME (netsql's `program`), prints "ready", then answers each "check"
line on stdin with the fate of its connected sockets so far, in one line:
"open=N reset=N aborted=N eof=N" (reset: ECONNRESET, the peer was killed; aborted:
ECONNABORTED, this socket was killed).
"""

import ctypes
import errno
import socket
import sys
import threading

ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
mode, specs = sys.argv[2], sys.argv[3:]
conns, udps, fate, lock = [], [], {}, threading.Lock()


def accept_all(listener):
    while True:
        conn, _ = listener.accept()
        with lock:
            conns.append(conn)


for spec in specs:
    if spec.startswith("udp:"):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", int(spec[4:])))
        udps.append(udp)
    elif mode == "serve":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(spec)))
        listener.listen(1024)
        threading.Thread(target=accept_all, args=(listener,), daemon=True).start()
    else:
        port, count = map(int, spec.split(":"))
        for _ in range(count):
            conns.append(socket.create_connection(("127.0.0.1", port)))
print("ready", flush=True)

for line in sys.stdin:
    counts = {"open": 0, "reset": 0, "aborted": 0, "eof": 0}
    with lock:
        current = list(conns) + udps
    for conn in current:
        if conn not in fate:
            conn.setblocking(False)
            try:
                fate[conn] = "eof" if conn.recv(1) == b"" else "open"
            except BlockingIOError:
                pass
            except ConnectionResetError:
                fate[conn] = "reset"
            except ConnectionAbortedError:
                fate[conn] = "aborted"
            except OSError as e:
                fate[conn] = errno.errorcode.get(e.errno, str(e.errno))
        counts[fate.get(conn, "open")] = counts.get(fate.get(conn, "open"), 0) + 1
    print(" ".join("%s=%d" % kv for kv in counts.items()), flush=True)
