//! ctnetlink's event groups: a message each time the kernel makes, changes or destroys a
//! tracked connection, as `conntrack -E` prints them.
//!
//! A subscription belongs to the network namespace of the thread that opened it. The
//! kernel sends events only while someone listens (`net.netfilter.nf_conntrack_events`
//! 2, the default) or always (1); with 0 it sends none.

use std::os::fd::{AsRawFd, RawFd};

use netlink_sys::protocols::NETLINK_NETFILTER;

use super::wire::{self, Event, Flow};
use crate::collect::netlink;
use crate::collect::CollectError;

/// NFNLGRP_CONNTRACK_NEW, _UPDATE and _DESTROY (1 to 3), as the bits of a netlink bind.
const GROUPS: u32 = 0b111;

/// `NLM_F_CREATE`: an entry's first event.
const NLM_F_CREATE: u16 = 0x400;

/// A busy NAT box makes and ends tens of thousands of entries a second, each event
/// ~300 bytes (~1 KiB of buffer accounting): as for socket events, 16 MiB rides out a
/// reader that stalls for about a second.
const RECEIVE_BUFFER: i32 = 16 << 20;

/// One namespace's subscription to conntrack's events, non-blocking.
pub struct Subscription(netlink::Subscription);

impl Subscription {
    /// Subscribes in the calling thread's network namespace. nfnetlink takes a
    /// subscription to ctnetlink's groups even where it has no ctnetlink, and no event
    /// would ever come: one request finds that out first.
    pub fn open() -> Result<Subscription, CollectError> {
        super::Ctnetlink::open()?.kernel_count("conntrack events")?;
        netlink::Subscription::open(NETLINK_NETFILTER, GROUPS, RECEIVE_BUFFER)
            .map(Subscription)
            .map_err(|errno| super::refused("conntrack events", errno))
    }

    /// Decodes the events queued now into `rows`, up to about `most`, and returns how
    /// many (see [`netlink::Subscription::drain`]).
    pub fn drain(&mut self, rows: &mut Vec<Flow>, most: usize) -> Result<usize, CollectError> {
        self.0
            .drain(rows, most, |m| {
                let event = match m.kind {
                    wire::CT_NEW if m.flags & NLM_F_CREATE != 0 => Event::New,
                    wire::CT_NEW => Event::Update,
                    wire::CT_DELETE => Event::Destroy,
                    _ => return None,
                };
                let mut flow = wire::decode_flow(m.kind, m.payload).ok()?;
                flow.event = Some(event);
                Some(flow)
            })
            .map_err(|e| CollectError::Conntrack(format!("conntrack events: recv: {e}")))
    }

    pub fn overflowed(&self) -> bool {
        self.0.overflowed
    }

    pub fn lost(&self) -> Option<u64> {
        self.0.lost()
    }
}

impl AsRawFd for Subscription {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
