"""An independent subscriber to sock_diag destroy events, the witness netsql's
socket_events is checked against. Run it inside the namespace to watch.

It joins the four destroy groups (TCP and UDP, IPv4 and IPv6), prints "ready" once
subscribed, then reads targets from stdin, one number a line: for each, it reads until
the events it received with a local port plus the events the kernel dropped for it
(SO_MEMINFO's drop counter) reach the target, and prints "RECEIVED DROPPED". The kernel
offers each event to every subscriber in one call, so once this one has been offered N
events, so has any other subscriber in the namespace. Its drops cannot be told apart by
port (they include the port-0 events of netsql's own unbound sockets), so the witness
takes a buffer large enough that it drops none: it runs as root.
"""

import select
import socket
import struct
import sys
import time

NETLINK_SOCK_DIAG = 4
# SKNLGRP_INET_TCP_DESTROY, _INET_UDP_DESTROY, _INET6_TCP_DESTROY, _INET6_UDP_DESTROY
GROUPS = sum(1 << (group - 1) for group in (1, 2, 3, 4))
SO_MEMINFO = 55
SO_RCVBUFFORCE = 33
BUFFER = 256 << 20
SK_MEMINFO_DROPS = 8
NLMSG_HDR = 16
TIMEOUT_S = 60


def dropped(sock):
    info = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 9 * 4)
    return struct.unpack("9I", info)[SK_MEMINFO_DROPS]


def ports(buffer):
    """Local ports of the inet_diag_msg events in one datagram."""
    at = 0
    while at + NLMSG_HDR <= len(buffer):
        length = struct.unpack_from("=I", buffer, at)[0]
        if length < NLMSG_HDR:
            break
        # inet_diag_msg: family, state, timer, retrans (a byte each), then the source
        # port in network order.
        if length >= NLMSG_HDR + 6:
            yield struct.unpack_from(">H", buffer, at + NLMSG_HDR + 4)[0]
        at += (length + 3) & ~3


def main():
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BUFFER)
    sock.bind((0, GROUPS))
    print("ready", flush=True)
    received = 0
    for line in sys.stdin:
        target = int(line)
        deadline = time.monotonic() + TIMEOUT_S
        while received + dropped(sock) < target:
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit(f"offered {received + dropped(sock)} of {target} events in {TIMEOUT_S} s")
            if not select.select([sock], [], [], min(left, 0.05))[0]:
                continue
            try:
                buffer = sock.recv(1 << 20)
            except OSError:  # ENOBUFS: the drops are counted by the kernel
                continue
            # Unbound sockets (netsql's own ioctl sockets) have no local port.
            received += sum(1 for port in ports(buffer) if port != 0)
        print(received, dropped(sock), flush=True)


if __name__ == "__main__":
    main()
