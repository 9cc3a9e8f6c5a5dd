"""Holds a known set of sockets in the network namespace it runs in until stdin closes.

Usage: holder.py PORT. Listens on 127.0.0.1:PORT and [::]:PORT+1, holds an established
pair to the first, a UDP socket on PORT+2, a unix listener on the abstract name
@netsql-holder-PORT and a unix socketpair. Prints "ready" once all exist.
"""

import socket
import sys

port = int(sys.argv[1])
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen()
wildcard = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
wildcard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
wildcard.bind(("::", port + 1))
wildcard.listen()
client = socket.create_connection(("127.0.0.1", port))
accepted, _ = listener.accept()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", port + 2))
unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
unix.bind("\0netsql-holder-%d" % port)
unix.listen()
pair = socket.socketpair()
print("ready", flush=True)
sys.stdin.read()
