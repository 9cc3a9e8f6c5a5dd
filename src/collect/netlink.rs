//! What every netlink conversation netsql has with the kernel shares, whichever family
//! (NETLINK_SOCK_DIAG, NETLINK_NETFILTER): splitting a `recv` into messages and reading
//! a dump's reply to its end.

use netlink_packet_core::{NetlinkBuffer, NLMSG_DONE, NLMSG_ERROR};
use std::os::fd::{AsRawFd, RawFd};

use netlink_sys::Socket;

/// One netlink message of a family's own type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub payload: &'a [u8],
}

/// What one netlink message in a reply says.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A message of the family's own (not netlink's control) type.
    Message(Message<'a>),
    /// The end of a dump.
    Done,
    /// `NLMSG_ERROR` (or a failed `NLMSG_DONE`) with a positive errno.
    Error(i32),
    /// An acknowledgement (`NLMSG_ERROR` 0).
    Ack,
    /// Anything else (`NLMSG_NOOP`): skipped.
    Other,
}

/// Splits one `recv` worth of bytes into netlink messages.
pub fn replies(buf: &[u8]) -> impl Iterator<Item = Result<Reply<'_>, String>> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= buf.len() {
            return None;
        }
        let msg = match NetlinkBuffer::new_checked(&buf[offset..]) {
            Ok(msg) => msg,
            Err(err) => {
                offset = buf.len();
                return Some(Err(format!("bad netlink header: {err}")));
            }
        };
        let length = msg.length() as usize;
        // Messages are padded to 4 bytes (NLMSG_ALIGN).
        offset += (length + 3) & !3;
        let payload = msg.payload();
        let status = || {
            payload
                .get(..4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        Some(Ok(match msg.message_type() {
            NLMSG_DONE => match status() {
                Some(code) if code < 0 => Reply::Error(-code),
                _ => Reply::Done,
            },
            NLMSG_ERROR => match status() {
                Some(0) => Reply::Ack,
                Some(code) => Reply::Error(code.saturating_neg()),
                None => return Some(Err("truncated NLMSG_ERROR".to_string())),
            },
            kind if kind < 16 => Reply::Other,
            kind => Reply::Message(Message {
                kind,
                flags: msg.flags(),
                payload,
            }),
        }))
    })
}

/// errnos that mean "this kernel (or sandbox) will not answer", as opposed to a broken
/// reply: no permission, no module for the protocol, no netlink at all.
pub fn is_refusal(errno: i32) -> bool {
    matches!(
        errno,
        libc::EPERM
            | libc::EACCES
            | libc::ENOENT
            | libc::EOPNOTSUPP
            | libc::EPROTONOSUPPORT
            | libc::EAFNOSUPPORT
            | libc::EINVAL
    )
}

/// Why a request got no (complete) answer.
#[derive(Debug)]
pub enum Failure {
    /// The kernel will not answer it (see [`is_refusal`]).
    Refused(std::io::Error),
    /// The conversation broke: a send or recv failed, a reply could not be read, or the
    /// kernel answered with an unexpected error.
    Broken(String),
}

/// Sends `request` and hands each message of the reply to `each`, until the dump ends,
/// the kernel acknowledges a request that is not a dump, or `each` answers `false` (the
/// rest of the reply is left unread).
pub fn converse(
    socket: &mut Socket,
    buf: &mut Vec<u8>,
    request: &[u8],
    mut each: impl FnMut(Message<'_>) -> Result<bool, String>,
) -> Result<(), Failure> {
    socket
        .send(request, 0)
        .map_err(|e| Failure::Broken(format!("send request: {e}")))?;
    loop {
        buf.clear();
        match socket.recv(buf, 0) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if is_refusal(e.raw_os_error().unwrap_or(0)) => return Err(Failure::Refused(e)),
            Err(e) => return Err(Failure::Broken(format!("recv: {e}"))),
        }
        for reply in replies(buf) {
            match reply.map_err(Failure::Broken)? {
                Reply::Message(message) => {
                    if !each(message).map_err(Failure::Broken)? {
                        return Ok(());
                    }
                }
                Reply::Done | Reply::Ack => return Ok(()),
                Reply::Error(errno) if is_refusal(errno) => {
                    return Err(Failure::Refused(std::io::Error::from_raw_os_error(errno)))
                }
                Reply::Error(errno) => {
                    return Err(Failure::Broken(
                        std::io::Error::from_raw_os_error(errno).to_string(),
                    ))
                }
                Reply::Other => {}
            }
        }
    }
}

/// `SK_MEMINFO_DROPS` in SO_MEMINFO's array.
const SK_MEMINFO_DROPS: usize = 8;

/// A non-blocking subscription to a family's multicast groups, in the network namespace
/// of the thread that opened it (and read there wherever it is read from). The kernel
/// drops messages when the receive buffer is full and says so once with ENOBUFS; the
/// exact number dropped is the socket's drop counter, which [`Subscription::lost`] reports.
pub struct Subscription {
    socket: Socket,
    buf: Vec<u8>,
    /// ENOBUFS seen: the kernel dropped messages at least once.
    pub overflowed: bool,
}

impl Subscription {
    /// Joins `groups` (a bind's legacy group bits) of `protocol` with a receive buffer of
    /// `buffer` bytes (past `net.core.rmem_max` when root).
    pub fn open(protocol: isize, groups: u32, buffer: i32) -> std::io::Result<Subscription> {
        let mut socket = Socket::new(protocol)?;
        socket.bind(&netlink_sys::SocketAddr::new(0, groups))?;
        socket.set_non_blocking(true)?;
        // SAFETY: setsockopt reads an int from a valid pointer with the length given.
        let forced = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&buffer as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            let _ = socket.set_rx_buf_sz(buffer as usize);
        }
        Ok(Subscription {
            socket,
            buf: Vec::with_capacity(256 * 1024),
            overflowed: false,
        })
    }

    /// Decodes the messages queued now into `rows`, up to about `most` (what one recv
    /// holds past that is kept), and returns how many; 0 when nothing is waiting. A
    /// message `decode` cannot read (`None`) is skipped: the stream goes on. The rest
    /// waits in the kernel's buffer: a reader that falls behind makes the kernel drop
    /// messages (and count them), never netsql's memory grow.
    pub fn drain<R>(
        &mut self,
        rows: &mut Vec<R>,
        most: usize,
        mut decode: impl FnMut(Message<'_>) -> Option<R>,
    ) -> std::io::Result<usize> {
        let before = rows.len();
        while rows.len() - before < most {
            self.buf.clear();
            match self.socket.recv(&mut self.buf, 0) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.overflowed = true;
                    continue;
                }
                Err(e) => return Err(e),
            }
            for reply in replies(&self.buf) {
                if let Ok(Reply::Message(message)) = reply {
                    rows.extend(decode(message));
                }
            }
        }
        Ok(rows.len() - before)
    }

    /// Messages the kernel dropped because our buffer was full, since the subscription
    /// began; `None` where SO_MEMINFO is missing (before Linux 4.12).
    pub fn lost(&self) -> Option<u64> {
        let mut info = [0u32; 9];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes to `info`, which has them.
        let status = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let have = len as usize / 4;
        (status == 0 && have > SK_MEMINFO_DROPS).then(|| u64::from(info[SK_MEMINFO_DROPS]))
    }
}

impl AsRawFd for Subscription {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}
