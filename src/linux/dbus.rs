//! A minimal blocking D-Bus client for the system bus: SASL EXTERNAL, method calls, replies,
//! and the marshalling of the few signatures systemd-resolved's API takes (i, b, s, a(sb),
//! a(iay)) and answers (o, v, a(iay), a(sb), b).
//!
//! Why by hand: zbus (even its `blocking` API) runs its connection on an executor thread of its
//! own, and wg-exec stays single-threaded on purpose (setns is per thread, and the forked
//! children's unshare(CLONE_NEWNS) must see one thread); it would also bring some 60 crates.
//! The `dbus` crate links libdbus-1, which the static musl build cannot use and which every
//! host would need at run time. What wg-exec needs is six method calls on one connection:
//! about 300 lines. The connection is a Unix socket opened by path, so the network namespace
//! the thread is in does not matter (the bus lives in the mount namespace, where resolved is).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const DEFAULT_SOCKET: &str = "/run/dbus/system_bus_socket";
/// How long a call may take (resolved answers in milliseconds; polkit may take longer).
const TIMEOUT: Duration = Duration::from_secs(25);

/// An error reply (name and text) or a failure to talk to the bus at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbusError {
    /// The D-Bus error name ("org.freedesktop.DBus.Error.ServiceUnknown"); empty when the bus
    /// itself could not be reached or spoke nonsense.
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for DbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name.is_empty() {
            true => f.write_str(&self.message),
            false => write!(f, "{} ({})", self.message, self.name),
        }
    }
}

fn broken(message: impl Into<String>) -> DbusError {
    DbusError {
        name: String::new(),
        message: message.into(),
    }
}

/// A value read from a message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// y, b, n, q, i, u, h, x, t (and d as its bits), widened.
    Int(i128),
    /// s, o, g.
    Str(String),
    Array(Vec<Value>),
    /// A struct or dict entry.
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

/// Marshals in the little-endian format; alignment is counted from the start of the buffer,
/// which is the start of the message or of its (8-aligned) body.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }
    pub fn byte(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.u32(v as u32);
    }
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    pub fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// An array whose elements have alignment `align`, written by `f`.
    pub fn array(&mut self, align: usize, f: impl FnOnce(&mut Writer)) {
        self.pad(4);
        let at = self.buf.len();
        self.u32(0);
        self.pad(align);
        let start = self.buf.len();
        f(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    /// A struct: 8-aligned.
    pub fn begin_struct(&mut self) {
        self.pad(8);
    }
}

/// Reads values of a message in either byte order.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

fn align_of(t: u8) -> usize {
    match t {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

/// Where the single complete type starting at `sig[i]` ends.
fn type_end(sig: &[u8], i: usize) -> Result<usize, DbusError> {
    match sig.get(i) {
        None => Err(broken("a truncated D-Bus signature")),
        Some(b'a') => type_end(sig, i + 1),
        Some(open @ (b'(' | b'{')) => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut j = i + 1;
            while sig.get(j) != Some(&close) {
                j = type_end(sig, j)?;
            }
            Ok(j + 1)
        }
        Some(_) => Ok(i + 1),
    }
}

impl Reader<'_> {
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }
    fn take(&mut self, n: usize) -> Result<&[u8], DbusError> {
        let end = self.pos + n;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| broken("a truncated D-Bus message"))?;
        self.pos = end;
        Ok(s)
    }
    fn uint(&mut self, n: usize) -> Result<u64, DbusError> {
        self.align(n);
        let big = self.big;
        let b = self.take(n)?;
        let mut v: u64 = 0;
        for i in 0..n {
            let byte = if big { b[i] } else { b[n - 1 - i] };
            v = (v << 8) | byte as u64;
        }
        Ok(v)
    }
    fn string(&mut self, len: usize) -> Result<String, DbusError> {
        let s = String::from_utf8_lossy(self.take(len)?).into_owned();
        self.take(1)?; // the terminating NUL
        Ok(s)
    }

    /// One value of the single complete type at `sig[i..]`; returns it and the next index.
    fn value(&mut self, sig: &[u8], i: usize) -> Result<(Value, usize), DbusError> {
        let t = *sig
            .get(i)
            .ok_or_else(|| broken("a truncated D-Bus signature"))?;
        let v = match t {
            b'y' => Value::Int(self.uint(1)? as i128),
            b'n' => Value::Int(self.uint(2)? as u16 as i16 as i128),
            b'q' => Value::Int(self.uint(2)? as i128),
            b'i' => Value::Int(self.uint(4)? as u32 as i32 as i128),
            b'b' | b'u' | b'h' => Value::Int(self.uint(4)? as i128),
            b'x' => Value::Int(self.uint(8)? as i64 as i128),
            b't' | b'd' => Value::Int(self.uint(8)? as i128),
            b's' | b'o' => {
                let len = self.uint(4)? as usize;
                Value::Str(self.string(len)?)
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Str(self.string(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.string(len)?;
                let (v, _) = self.value(inner.as_bytes(), 0)?;
                Value::Variant(Box::new(v))
            }
            b'a' => {
                let len = self.uint(4)? as usize;
                let elem = sig
                    .get(i + 1)
                    .copied()
                    .ok_or_else(|| broken("a truncated D-Bus signature"))?;
                self.align(align_of(elem));
                let end = self.pos + len;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(sig, i + 1)?.0);
                }
                Value::Array(items)
            }
            b'(' | b'{' => {
                self.align(8);
                let close = if t == b'(' { b')' } else { b'}' };
                let mut fields = Vec::new();
                let mut j = i + 1;
                while sig.get(j) != Some(&close) {
                    let (v, next) = self.value(sig, j)?;
                    fields.push(v);
                    j = next;
                }
                Value::Struct(fields)
            }
            other => {
                return Err(broken(format!(
                    "an unknown D-Bus type code {:?}",
                    other as char
                )))
            }
        };
        Ok((v, type_end(sig, i)?))
    }

    /// Every value of a signature, in order.
    fn values(&mut self, sig: &str) -> Result<Vec<Value>, DbusError> {
        let sig = sig.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < sig.len() {
            let (v, next) = self.value(sig, i)?;
            out.push(v);
            i = next;
        }
        Ok(out)
    }
}

/// A connection to the system bus.
pub struct Bus {
    stream: UnixStream,
    serial: u32,
}

/// The system bus socket: DBUS_SYSTEM_BUS_ADDRESS when it names a `unix:path=`, else the usual
/// one.
fn socket_path() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| {
            a.split(';').find_map(|one| {
                one.strip_prefix("unix:")?
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("path=").map(str::to_string))
            })
        })
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string())
}

impl Bus {
    /// Connects, authenticates as our uid (SASL EXTERNAL) and says Hello.
    pub fn system() -> Result<Bus, DbusError> {
        let path = socket_path();
        let stream = UnixStream::connect(&path)
            .map_err(|e| broken(format!("cannot connect to the system bus at {path}: {e}")))?;
        let io = |e: std::io::Error| broken(format!("system bus {path}: {e}"));
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        let mut bus = Bus { stream, serial: 0 };
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        bus.stream
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .map_err(io)?;
        let line = bus.read_line().map_err(io)?;
        if !line.starts_with("OK ") {
            return Err(broken(format!(
                "the system bus refused authentication as uid {uid}: {}",
                line.trim_end()
            )));
        }
        bus.stream.write_all(b"BEGIN\r\n").map_err(io)?;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            "",
            Vec::new(),
        )?;
        Ok(bus)
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") && line.len() < 4096 {
            self.stream.read_exact(&mut byte)?;
            line.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Calls a method and returns the values of its reply; an error reply is an error with the
    /// error's name and text. Other messages that arrive meanwhile (signals) are skipped.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        signature: &str,
        body: Vec<u8>,
    ) -> Result<Vec<Value>, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        let mut h = Writer::default();
        h.byte(b'l');
        h.byte(1); // METHOD_CALL
        h.byte(0); // flags: a reply is wanted, no interactive authorization
        h.byte(1); // protocol version
        h.u32(body.len() as u32);
        h.u32(serial);
        let field = |h: &mut Writer, code: u8, t: &str, v: &str| {
            h.begin_struct();
            h.byte(code);
            h.signature(t);
            match t {
                "g" => h.signature(v),
                _ => h.str(v),
            }
        };
        h.array(8, |h| {
            field(h, 1, "o", path);
            field(h, 2, "s", interface);
            field(h, 3, "s", member);
            field(h, 6, "s", destination);
            if !signature.is_empty() {
                field(h, 8, "g", signature);
            }
        });
        h.pad(8);
        h.buf.extend_from_slice(&body);
        let what = format!("{interface}.{member}");
        self.stream
            .write_all(&h.buf)
            .map_err(|e| broken(format!("send {what} on the system bus: {e}")))?;
        loop {
            let m = self
                .receive()
                .map_err(|e| broken(format!("read the reply to {what}: {}", e.message)))?;
            if m.reply_serial != Some(serial) {
                continue;
            }
            let mut r = Reader {
                buf: &m.body,
                pos: 0,
                big: m.big,
            };
            let values = r.values(&m.signature)?;
            return match m.kind {
                2 => Ok(values),
                3 => Err(DbusError {
                    name: m.error_name,
                    message: match values.first() {
                        Some(Value::Str(s)) => s.clone(),
                        _ => String::new(),
                    },
                }),
                _ => continue,
            };
        }
    }

    fn receive(&mut self) -> Result<Message, DbusError> {
        let io = |e: std::io::Error| broken(e.to_string());
        let mut fixed = [0u8; 16];
        self.stream.read_exact(&mut fixed).map_err(io)?;
        let big = match fixed[0] {
            b'l' => false,
            b'B' => true,
            other => return Err(broken(format!("a bad byte order mark {other:#x}"))),
        };
        let num = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            match big {
                true => u32::from_be_bytes(a),
                false => u32::from_le_bytes(a),
            }
        };
        let body_len = num(&fixed[4..8]) as usize;
        let fields_len = num(&fixed[12..16]) as usize;
        if body_len > 1 << 27 || fields_len > 1 << 26 {
            return Err(broken("a message larger than D-Bus allows"));
        }
        let header_len = (16 + fields_len).div_ceil(8) * 8;
        let mut rest = vec![0u8; header_len - 16 + body_len];
        self.stream.read_exact(&mut rest).map_err(io)?;
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest);
        let mut r = Reader {
            buf: &all[..16 + fields_len],
            pos: 12,
            big,
        };
        let mut m = Message {
            kind: fixed[1],
            big,
            reply_serial: None,
            error_name: String::new(),
            signature: String::new(),
            body: all[header_len..].to_vec(),
        };
        if let Value::Array(fields) = r.value(b"a(yv)", 0)?.0 {
            for f in fields {
                let Value::Struct(kv) = f else { continue };
                let (Some(Value::Int(code)), Some(Value::Variant(v))) = (kv.first(), kv.get(1))
                else {
                    continue;
                };
                match (code, v.as_ref()) {
                    (4, Value::Str(s)) => m.error_name = s.clone(),
                    (5, Value::Int(n)) => m.reply_serial = Some(*n as u32),
                    (8, Value::Str(s)) => m.signature = s.clone(),
                    _ => {}
                }
            }
        }
        Ok(m)
    }
}

struct Message {
    /// 1 call, 2 return, 3 error, 4 signal.
    kind: u8,
    big: bool,
    reply_serial: Option<u32>,
    error_name: String,
    signature: String,
    body: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        // a(iay) then a(sb) then b, as SetLinkDNS / SetLinkDomains / a property answer them.
        let mut w = Writer::default();
        w.i32(7);
        w.array(8, |w| {
            for (family, bytes) in [(2, vec![192u8, 0, 2, 53]), (10, vec![0x20; 16])] {
                w.begin_struct();
                w.i32(family);
                w.array(1, |w| w.buf.extend_from_slice(&bytes));
            }
        });
        w.array(8, |w| {
            w.begin_struct();
            w.str("corp.example");
            w.bool(false);
        });
        w.bool(true);
        let mut r = Reader {
            buf: &w.buf,
            pos: 0,
            big: false,
        };
        let v = r.values("ia(iay)a(sb)b").unwrap();
        assert_eq!(v[0], Value::Int(7));
        let Value::Array(servers) = &v[1] else {
            panic!("{v:?}")
        };
        assert_eq!(
            servers[0],
            Value::Struct(vec![
                Value::Int(2),
                Value::Array([192, 0, 2, 53].map(Value::Int).to_vec())
            ])
        );
        assert_eq!(servers.len(), 2);
        assert_eq!(
            v[2],
            Value::Array(vec![Value::Struct(vec![
                Value::Str("corp.example".into()),
                Value::Int(0)
            ])])
        );
        assert_eq!(v[3], Value::Int(1));
        assert_eq!(r.pos, w.buf.len());
    }

    #[test]
    fn an_empty_array_of_structs_still_pads_to_its_elements() {
        let mut w = Writer::default();
        w.i32(3);
        w.array(8, |_| {});
        // length at 4, padding to 8, no elements.
        assert_eq!(w.buf, [3, 0, 0, 0, 0, 0, 0, 0]);
        let mut r = Reader {
            buf: &w.buf,
            pos: 0,
            big: false,
        };
        assert_eq!(
            r.values("ia(sb)").unwrap(),
            vec![Value::Int(3), Value::Array(vec![])]
        );
    }

    #[test]
    fn a_complete_type_ends_where_its_brackets_close() {
        assert_eq!(type_end(b"a(iay)b", 0).unwrap(), 6);
        assert_eq!(type_end(b"a{sv}", 0).unwrap(), 5);
        assert!(type_end(b"a(ii", 0).is_err());
    }
}
