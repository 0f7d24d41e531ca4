//! A blocking netlink connection: send requests (one, or many pipelined in few datagrams), read
//! their acks in order, decode the kernel's extended-ack text.
//!
//! Written by hand on top of netlink-sys and the rust-netlink packet crates because the crates
//! that wrap this (rtnetlink, netlink-proto) are async-only, and netlink-packet-core does not
//! decode extended-ack attributes.
#![allow(unsafe_code)] // setsockopt(SO_RCVTIMEO) on the netlink socket

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use wg_exec_steps::KernelError;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const HEADER_LEN: usize = 16;
/// How many bytes of requests go into one datagram of a pipeline.
const BATCH_BYTES: usize = 48 * 1024;
/// How many requests are in flight before their acks are read. Each ack is its own skb of
/// about 768 bytes truesize, and they must all fit in the default 208 KiB receive buffer
/// (rmem_default), or the kernel drops them (ENOBUFS).
const WINDOW: usize = 128;
/// A reply that has not come after this long will not come.
const RECV_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Requests (netlink messages) and datagrams sent by this process, for the debug log.
static MESSAGES: AtomicUsize = AtomicUsize::new(0);
static DATAGRAMS: AtomicUsize = AtomicUsize::new(0);

/// (messages, datagrams) sent so far.
pub fn sent() -> (usize, usize) {
    (MESSAGES.load(Relaxed), DATAGRAMS.load(Relaxed))
}

pub struct Conn {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// One netlink message read back: its header and body bytes.
struct Raw<'a> {
    msg_type: u16,
    flags: u16,
    seq: u32,
    body: &'a [u8],
    whole: &'a [u8],
}

fn split(datagram: &[u8]) -> Vec<Raw<'_>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + HEADER_LEN <= datagram.len() {
        let d = &datagram[off..];
        let len = u32::from_ne_bytes(d[0..4].try_into().unwrap()) as usize;
        if len < HEADER_LEN || len > d.len() {
            break;
        }
        out.push(Raw {
            msg_type: u16::from_ne_bytes(d[4..6].try_into().unwrap()),
            flags: u16::from_ne_bytes(d[6..8].try_into().unwrap()),
            seq: u32::from_ne_bytes(d[8..12].try_into().unwrap()),
            body: &d[HEADER_LEN..len],
            whole: &d[..len],
        });
        off += (len + 3) & !3;
    }
    out
}

/// The errno of an NLMSG_ERROR body (0 = ack) and its extended-ack message.
fn decode_error(flags: u16, body: &[u8]) -> (i32, Option<String>) {
    if body.len() < 4 {
        return (libc::EBADMSG, None);
    }
    let code = -i32::from_ne_bytes(body[0..4].try_into().unwrap());
    if flags & NLM_F_ACK_TLVS == 0 || body.len() < 4 + HEADER_LEN {
        return (code, None);
    }
    let orig_len = u32::from_ne_bytes(body[4..8].try_into().unwrap()) as usize;
    let mut off = 4 + if flags & NLM_F_CAPPED != 0 {
        HEADER_LEN
    } else {
        orig_len
    };
    off = (off + 3) & !3;
    while off + 4 <= body.len() {
        let len = u16::from_ne_bytes(body[off..off + 2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(body[off + 2..off + 4].try_into().unwrap()) & 0x3fff;
        if len < 4 || off + len > body.len() {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &body[off + 4..off + len];
            let text = text.split(|b| *b == 0).next().unwrap_or(&[]);
            return (code, Some(String::from_utf8_lossy(text).into_owned()));
        }
        off += (len + 3) & !3;
    }
    (code, None)
}

/// SO_RCVTIMEO, so that a lost reply is an error instead of a hang.
fn set_recv_timeout(sock: &Socket, d: std::time::Duration) -> std::io::Result<()> {
    use nix::sys::time::{TimeVal, TimeValLike};
    // At most a year: TimeVal asserts its range.
    let micros = d
        .min(std::time::Duration::from_secs(365 * 86_400))
        .as_micros();
    let tv = TimeVal::microseconds(micros as i64);
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
        .map_err(std::io::Error::from)
}

impl Conn {
    /// A socket of `protocol` (netlink_sys::constants::NETLINK_ROUTE, NETLINK_GENERIC) in the
    /// calling thread's current network namespace.
    pub fn new(protocol: isize) -> std::io::Result<Conn> {
        let mut sock = Socket::new(protocol)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Both are best effort: old kernels lack them, and we only lose message text.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_rx_buf_sz(1 << 20);
        set_recv_timeout(&sock, RECV_TIMEOUT)?;
        Ok(Conn {
            sock,
            seq: 0,
            buf: vec![0; 1 << 16],
        })
    }

    fn frame<I: NetlinkSerializable>(&mut self, inner: I, flags: u16) -> (u32, Vec<u8>) {
        self.frame_then(inner, flags, |_| {})
    }

    /// Frames and serializes a request, then hands the message back to `scrub` before it is
    /// dropped (requests that carry keys overwrite them).
    fn frame_then<I: NetlinkSerializable>(
        &mut self,
        inner: I,
        flags: u16,
        scrub: impl FnOnce(&mut I),
    ) -> (u32, Vec<u8>) {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut bytes);
        if let NetlinkPayload::InnerMessage(mut inner) = msg.payload {
            scrub(&mut inner);
        }
        (self.seq, bytes)
    }

    fn recv(&mut self) -> Result<usize, KernelError> {
        loop {
            match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(KernelError::new(format!(
                        "no reply from the kernel within {} s",
                        RECV_TIMEOUT.as_secs()
                    )))
                }
                Err(e) => return Err(KernelError::from_io(&e)),
            }
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<(), KernelError> {
        loop {
            match self.sock.send(bytes, 0) {
                Ok(_) => {
                    MESSAGES.fetch_add(split(bytes).len(), Relaxed);
                    DATAGRAMS.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(KernelError::from_io(&e)),
            }
        }
    }

    /// One request; waits for its ack. Replies other than the ack are returned decoded.
    pub fn request<I>(&mut self, inner: I, flags: u16) -> Result<Vec<I>, KernelError>
    where
        I: NetlinkSerializable + NetlinkDeserializable,
    {
        self.request_then(inner, flags, |_| {})
    }

    /// A dump: every reply until the end. A dump that the kernel flags as interrupted (the
    /// object changed meanwhile) is asked for again, a few times.
    pub fn dump<I>(&mut self, make: impl Fn() -> I) -> Result<Vec<I>, KernelError>
    where
        I: NetlinkSerializable + NetlinkDeserializable,
    {
        for _ in 0..10 {
            let (replies, interrupted) = self.exchange(make(), NLM_F_DUMP, |_| {})?;
            if !interrupted {
                return Ok(replies);
            }
        }
        Err(KernelError::new(
            "the dump was interrupted by changes ten times in a row",
        ))
    }

    /// A dump read without decoding every reply whole: `pick` gets each reply's type and body
    /// (the bytes after the netlink header) and keeps what it returns. For large dumps of which
    /// a few fields are wanted (the routes of a link: 20,000 at 10,000 peers). Retried like
    /// [`Conn::dump`] when interrupted.
    pub fn dump_picked<I, T>(
        &mut self,
        make: impl Fn() -> I,
        mut pick: impl FnMut(u16, &[u8]) -> Result<Option<T>, KernelError>,
    ) -> Result<Vec<T>, KernelError>
    where
        I: NetlinkSerializable,
    {
        for _ in 0..10 {
            let mut picked = Vec::new();
            let interrupted = self.exchange_raw(
                make(),
                NLM_F_DUMP,
                |_| {},
                |msg_type, body, _| {
                    if let Some(t) = pick(msg_type, body)? {
                        picked.push(t);
                    }
                    Ok(())
                },
            )?;
            if !interrupted {
                return Ok(picked);
            }
        }
        Err(KernelError::new(
            "the dump was interrupted by changes ten times in a row",
        ))
    }

    /// [`Conn::request`] for messages that carry secrets: `scrub` overwrites them once the
    /// message is serialized, and the serialized bytes are zeroed after sending.
    pub fn request_then<I>(
        &mut self,
        inner: I,
        flags: u16,
        scrub: impl FnOnce(&mut I),
    ) -> Result<Vec<I>, KernelError>
    where
        I: NetlinkSerializable + NetlinkDeserializable,
    {
        self.exchange(inner, flags, scrub).map(|(r, _)| r)
    }

    /// One request and its replies; true when a reply was flagged NLM_F_DUMP_INTR.
    fn exchange<I>(
        &mut self,
        inner: I,
        flags: u16,
        scrub: impl FnOnce(&mut I),
    ) -> Result<(Vec<I>, bool), KernelError>
    where
        I: NetlinkSerializable + NetlinkDeserializable,
    {
        let mut replies = Vec::new();
        let interrupted = self.exchange_raw(inner, flags, scrub, |_, _, whole| {
            let msg = NetlinkMessage::<I>::deserialize(whole)
                .map_err(|e| KernelError::new(format!("bad netlink reply: {e}")))?;
            if let NetlinkPayload::InnerMessage(m) = msg.payload {
                replies.push(m);
            }
            Ok(())
        })?;
        Ok((replies, interrupted))
    }

    /// One request; each reply other than the ack or the end of a dump goes to `reply` (its
    /// type, its body, and the whole message with its header). True when a reply was flagged
    /// NLM_F_DUMP_INTR.
    fn exchange_raw<I>(
        &mut self,
        inner: I,
        flags: u16,
        scrub: impl FnOnce(&mut I),
        mut reply: impl FnMut(u16, &[u8], &[u8]) -> Result<(), KernelError>,
    ) -> Result<bool, KernelError>
    where
        I: NetlinkSerializable,
    {
        let mut interrupted = false;
        let (seq, mut bytes) = self.frame_then(inner, flags, scrub);
        let sent = self.send(&bytes);
        // Requests may carry keys: do not leave them in freed memory.
        bytes.fill(0);
        sent?;
        loop {
            let n = self.recv()?;
            for raw in split(&self.buf[..n]) {
                if raw.seq != seq {
                    continue;
                }
                interrupted |= raw.flags & NLM_F_DUMP_INTR != 0;
                match raw.msg_type {
                    NLMSG_ERROR => {
                        let (code, text) = decode_error(raw.flags, raw.body);
                        return match code {
                            0 => Ok(interrupted),
                            e => Err(KernelError::from_errno(e, text.as_deref())),
                        };
                    }
                    NLMSG_DONE => return Ok(interrupted),
                    t => reply(t, raw.body, raw.whole)?,
                }
            }
        }
    }

    /// Many requests pipelined: several per datagram, acks read after each window. Returns one
    /// result per request, in order; a failure does not stop the others.
    pub fn pipeline<I: NetlinkSerializable>(
        &mut self,
        requests: impl IntoIterator<Item = (I, u16)>,
    ) -> Result<Vec<Result<(), KernelError>>, KernelError> {
        let mut results = Vec::new();
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let first_index = results.len();
            let mut first_seq = None;
            let mut in_flight = 0;
            let mut datagram = Vec::with_capacity(BATCH_BYTES);
            while in_flight < WINDOW {
                let Some((inner, flags)) = requests.next() else {
                    break;
                };
                let (seq, bytes) = self.frame(inner, flags);
                first_seq.get_or_insert(seq);
                if datagram.len() + bytes.len() > BATCH_BYTES && !datagram.is_empty() {
                    self.send(&datagram)?;
                    datagram.clear();
                }
                datagram.extend_from_slice(&bytes);
                in_flight += 1;
            }
            if !datagram.is_empty() {
                self.send(&datagram)?;
            }
            results.resize_with(first_index + in_flight, || Ok(()));
            let first_seq = first_seq.expect("at least one request");
            let mut acked = 0;
            while acked < in_flight {
                let n = self.recv()?;
                for raw in split(&self.buf[..n]) {
                    if raw.msg_type != NLMSG_ERROR {
                        continue;
                    }
                    let slot = raw.seq.wrapping_sub(first_seq) as usize;
                    if slot >= in_flight {
                        continue;
                    }
                    let (code, text) = decode_error(raw.flags, raw.body);
                    if code != 0 {
                        results[first_index + slot] =
                            Err(KernelError::from_errno(code, text.as_deref()));
                    }
                    acked += 1;
                }
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_extended_ack_text() {
        // NLMSG_ERROR body: -95, the capped original header, then NLMSGERR_ATTR_MSG.
        let mut body = Vec::new();
        body.extend_from_slice(&(-95i32).to_ne_bytes());
        body.extend_from_slice(&[0u8; 16]);
        let text = b"Unknown device type\0";
        body.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        body.extend_from_slice(text);
        let (code, msg) = decode_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &body);
        assert_eq!(code, 95);
        assert_eq!(msg.as_deref(), Some("Unknown device type"));
        let err = KernelError::from_errno(code, msg.as_deref());
        assert_eq!(
            err.to_string(),
            "Unknown device type: Operation not supported (os error 95)"
        );
    }
}
