#!/usr/bin/env python3
"""Holds N established loopback TCP connections for a benchmark until it is killed.

One process may hold at most 20000 descriptors on these machines and each connection
costs two (client and accepted end), so the caller starts several holders, each with a
listener of its own. Prints "ready" once every connection is accepted.
"""
import signal
import socket
import sys

count, port = int(sys.argv[1]), int(sys.argv[2])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(4096)
held = []
for _ in range(count):
    client = socket.create_connection(("127.0.0.1", port))
    server, _ = listener.accept()
    held += [client, server]
print("ready", flush=True)
signal.pause()
