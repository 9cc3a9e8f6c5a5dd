//! Network interfaces: counters from `/proc/net/dev`, flags and MTU from the
//! `SIOCGIFFLAGS`/`SIOCGIFMTU` ioctls (what `netstat -i` and `ifconfig` show).
//!
//! The ioctls are two libc calls; a netlink RTM_GETLINK dump would need a second netlink
//! crate family for the same two numbers, so they are done by hand here.

use std::io::BufRead;

use super::{parse_optional, CollectError, ParseFail, Root};

/// One interface's line of `/proc/net/dev`, plus its flags and MTU when the kernel
/// answered the ioctls (an interface can vanish between the two reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// The name as text (U+FFFD where its bytes are not UTF-8).
    pub name: String,
    /// The name's bytes, as the ioctls want them.
    pub raw_name: Vec<u8>,
    pub mtu: Option<u32>,
    /// `IFF_*` bits as `SIOCGIFFLAGS` reports them (including IFF_RUNNING).
    pub flags: Option<u32>,
    /// receive: bytes packets errs drop fifo frame compressed multicast
    pub rx: [u64; 8],
    /// transmit: bytes packets errs drop fifo colls carrier compressed
    pub tx: [u64; 8],
}

/// Reads every interface `root` shows; `ioctls`: ask flags and MTU of the namespace this
/// thread is in (only when `root` is that namespace's live /proc).
pub fn read(root: &Root, ioctls: bool) -> Result<Vec<Interface>, CollectError> {
    let mut interfaces = parse_optional(root, "net/dev", parse)?;
    if ioctls {
        if let Some(sock) = IoctlSocket::open()? {
            for interface in &mut interfaces {
                interface.flags = sock.flags(&interface.raw_name);
                interface.mtu = sock.mtu(&interface.raw_name);
            }
        }
    }
    Ok(interfaces)
}

/// `/proc/net/dev`: two header lines, then `name: 16 counters`.
pub fn parse(reader: impl BufRead) -> Result<Vec<Interface>, ParseFail> {
    let mut interfaces = Vec::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(ParseFail::Io)?;
        if index < 2 || line.trim_ascii().is_empty() {
            continue;
        }
        let bad = |field: &'static str, reason: String| {
            ParseFail::Line(CollectError::Parse {
                file: "/proc/net/dev".into(),
                line: index + 1,
                field,
                reason,
            })
        };
        // A name holds no ':' or white space (the kernel's dev_valid_name), but may hold
        // any other byte.
        let colon = line
            .iter()
            .rposition(|&b| b == b':')
            .ok_or_else(|| bad("interface", "no ':' after the name".into()))?;
        let (name, counters) = (line[..colon].trim_ascii(), &line[colon + 1..]);
        let values: Vec<u64> = String::from_utf8_lossy(counters)
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| bad("counters", format!("{e}")))?;
        if values.len() < 16 {
            return Err(bad("counters", format!("{} of 16", values.len())));
        }
        let mut interface = Interface {
            name: String::from_utf8_lossy(name).into_owned(),
            raw_name: name.to_vec(),
            ..Interface::default()
        };
        interface.rx.copy_from_slice(&values[..8]);
        interface.tx.copy_from_slice(&values[8..16]);
        interfaces.push(interface);
    }
    Ok(interfaces)
}

/// A datagram socket to ask interface ioctls on.
struct IoctlSocket(std::os::fd::OwnedFd);

impl IoctlSocket {
    /// `None` when the kernel will not give one (no IPv4, a seccomp filter): flags and MTU
    /// are NULL then. Running out of descriptors is an error, not NULLs.
    fn open() -> Result<Option<Self>, CollectError> {
        use std::os::fd::FromRawFd;
        // SAFETY: socket(2) with constant arguments; the fd is owned from here on.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            if super::exhausted(&err) {
                return Err(CollectError::Socket {
                    what: "a socket for interface ioctls",
                    source: err,
                });
            }
            return Ok(None);
        }
        // SAFETY: a descriptor socket(2) just returned, owned by nothing else.
        Ok(Some(IoctlSocket(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd)
        })))
    }

    fn request(&self, name: &[u8], request: libc::c_ulong) -> Option<libc::ifreq> {
        use std::os::fd::AsRawFd;
        if name.len() >= libc::IFNAMSIZ {
            return None;
        }
        // SAFETY: ifreq is plain data; zeroed is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (slot, byte) in req.ifr_name.iter_mut().zip(name) {
            *slot = *byte as libc::c_char;
        }
        // SAFETY: the request reads ifr_name and writes the union of `req`, which we own.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), request as _, &mut req) };
        (rc == 0).then_some(req)
    }

    fn flags(&self, name: &[u8]) -> Option<u32> {
        let req = self.request(name, libc::SIOCGIFFLAGS)?;
        // SAFETY: SIOCGIFFLAGS filled ifru_flags.
        Some(u32::from(unsafe { req.ifr_ifru.ifru_flags } as u16))
    }

    fn mtu(&self, name: &[u8]) -> Option<u32> {
        let req = self.request(name, libc::SIOCGIFMTU)?;
        // SAFETY: SIOCGIFMTU filled ifru_mtu.
        u32::try_from(unsafe { req.ifr_ifru.ifru_mtu }).ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_by_position() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    6386      58    0    0    0     0          0         0     6386      58    0    0    0     0       0          0\n  \
eth0: 276434211   11841    1    2    3     4          5         6   753268    7772    7    8    9    10       11          12\n";
        let found = super::parse(text.as_bytes()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].name, "eth0");
        assert_eq!(found[1].rx, [276434211, 11841, 1, 2, 3, 4, 5, 6]);
        assert_eq!(found[1].tx, [753268, 7772, 7, 8, 9, 10, 11, 12]);
        // Any user may name an interface in a namespace of their own with bytes that are
        // not UTF-8: the row reads with U+FFFD, the ioctls get the bytes.
        let odd = b"h\nh\n bad\xff: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let found = super::parse(&odd[..]).unwrap();
        assert_eq!(found[0].name, "bad\u{fffd}");
        assert_eq!(found[0].raw_name, b"bad\xff");
        assert_eq!(found[0].tx[7], 16);
        assert!(super::parse("h\nh\neth0: 1 2 3\n".as_bytes()).is_err());
        assert!(super::parse("h\nh\neth0 1 2\n".as_bytes()).is_err());
    }
}
