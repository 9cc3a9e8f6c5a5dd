"""What `netsql doctor` reports, found again without netsql: a sock_diag client of its
own, `ss -K`, its own destroy-group subscription, getsockopt(TCP_INFO), `conntrack -C`,
`sysctl`, `stat -f`, and a listing of another user's /proc/PID/fd.

Usage: doctor_witness.py PID   (PID: a process of another user)
Prints `name: yes ...` / `name: no ...` / `name: VALUE` lines, the names doctor's.
"""

import errno
import os
import socket
import struct
import subprocess
import sys

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300


def sock_diag(family, protocol):
    """Whether the kernel answers a dump request (an empty dump is an answer)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    if family == socket.AF_UNIX:
        # struct unix_diag_req: family, protocol, pad, states, ino, show, cookie[2]
        req = struct.pack("=BBHIIIII", family, 0, 0, 0xFFFFFFFF, 0, 0, 0, 0)
    else:
        # struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48)
        req = struct.pack("=BBBBI", family, protocol, 0, 0, 0xFFFFFFFF) + bytes(48)
    header = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                         NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    s.send(header + req)
    data = s.recv(65536)
    s.close()
    kind = struct.unpack_from("=H", data, 4)[0]
    if kind == SOCK_DIAG_BY_FAMILY:
        return "yes"
    code = struct.unpack_from("=i", data, 16)[0]
    if kind in (NLMSG_ERROR, NLMSG_DONE) and code < 0:
        return "no " + errno.errorcode.get(-code, str(-code))
    return "yes"


def ss_kill():
    """`ss -K` on a listener of ours: closed if its pending error is ECONNABORTED."""
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    port = listener.getsockname()[1]
    subprocess.run(["ss", "-tlK", "sport = :%d" % port], capture_output=True)
    err = listener.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return "yes" if err == errno.ECONNABORTED else "no " + errno.errorcode.get(err, str(err))


def destroy_events():
    """Subscribes to the four destroy groups, closes a UDP socket, waits for its event."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        s.bind((0, 0b1111))
    except OSError as e:
        return "no " + str(e)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", 0))
    port = u.getsockname()[1]
    u.close()
    s.settimeout(2)
    try:
        while True:
            data = s.recv(65536)
            at = 0
            while at + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, at)
                if kind == SOCK_DIAG_BY_FAMILY:
                    sport = struct.unpack_from(">H", data, at + 16 + 4)[0]
                    if sport == port:
                        return "yes"
                at += (length + 3) & ~3
    except socket.timeout:
        return "no event"


def tcp_info_length():
    s = socket.socket()
    s.listen()
    return "%d bytes" % len(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1024))


def conntrack():
    r = subprocess.run(["conntrack", "-C"], capture_output=True, text=True)
    if r.returncode != 0:
        return "no " + r.stderr.strip().replace("\n", " ")
    return "yes %s entries" % r.stdout.strip()


def sysctl(name):
    r = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True)
    value = r.stdout.strip()
    return "off" if value == "0" else "on" if value else "unknown"


def cgroup2():
    for line in open("/proc/self/mounts"):
        fields = line.split()
        if fields[2] == "cgroup2":
            kind = subprocess.run(["stat", "-f", "-c", "%T", fields[1]],
                                  capture_output=True, text=True).stdout.strip()
            return ("yes" if kind == "cgroup2fs" else "no") + " " + fields[1]
    return "no"


def cap_eff():
    for line in open("/proc/self/status"):
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise SystemExit("no CapEff")


def other_fds(pid):
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
        os.readlink("/proc/%s/fd/%s" % (pid, fds[0]))
        return "yes"
    except PermissionError:
        return "no"


caps = cap_eff()
for name, value in [
    ("sock_diag tcp", sock_diag(socket.AF_INET, socket.IPPROTO_TCP)),
    ("sock_diag udp", sock_diag(socket.AF_INET, socket.IPPROTO_UDP)),
    ("sock_diag raw", sock_diag(socket.AF_INET, socket.IPPROTO_RAW)),
    ("sock_diag unix", sock_diag(socket.AF_UNIX, 0)),
    ("SOCK_DESTROY", ss_kill()),
    ("destroy events", destroy_events()),
    ("tcp_info", tcp_info_length()),
    ("cgroup v2", cgroup2()),
    ("conntrack", conntrack()),
    ("conntrack accounting", sysctl("net.netfilter.nf_conntrack_acct")),
    ("conntrack timestamps", sysctl("net.netfilter.nf_conntrack_timestamp")),
    ("CAP_NET_ADMIN", "yes" if caps & (1 << 12) else "no"),
    ("CAP_SYS_PTRACE", "yes" if caps & (1 << 19) else "no"),
    ("CAP_DAC_READ_SEARCH", "yes" if caps & (1 << 2) else "no"),
    ("other users' processes", other_fds(sys.argv[1])),
]:
    print("%s: %s" % (name, value))
