//! A minimal blocking D-Bus client for the system bus: SASL EXTERNAL, method calls, replies,
//! and the marshalling of the few signatures systemd-resolved's API takes (i, b, s, a(sb),
//! a(iay)) and answers (o, v, a(iay), a(sb), b).
//!
//! Everything the bus sends is hostile input: a signature is validated as sd-bus does (type
//! codes, a complete type per variant, no empty struct, dict entries only in arrays, at most 32
//! nested arrays and 32 nested structs, 64 levels in all, variants included), a message is at
//! most [`MAX_MESSAGE`] bytes, every read is checked against the buffer, and each call (with the
//! handshake) has one deadline that messages meant for others do not extend. Tested against a
//! stand-in bus that answers with bad signatures, `a()`, deep nesting, endless data or nothing.
//!
//! Why still by hand, now that wg-exec runs resolver threads (so "single-threaded" is no longer
//! the reason): zbus's blocking API is a wrapper over its async connection, driven by an
//! executor thread and async-io's reactor thread that stay for the life of the process, and
//! brings some 60 crates (async-io, async-executor, event-listener, nix again, serde's zvariant,
//! ...) into a privileged one-shot program for six method calls on one connection; it would
//! roughly double the dependency count and add measurably to build time and binary size (the
//! static musl build included). Threads that stay would also make the process unable to
//! `unshare(CLONE_NEWNS)` or `setns` a mount namespace later (the kernel refuses both to a
//! process whose threads share its fs_struct); the resolver's threads end, zbus's do not. The
//! `dbus` crate links libdbus-1, which the static musl build cannot use. The reader below is
//! small enough to read in one sitting and is fuzzed (fuzz/fuzz_targets/dbus.rs).
//!
//! Namespaces: the connection is a Unix socket opened by path, so it reaches the bus of the
//! mount namespace the process is in (the host's, where resolved runs: DNS is set only on the
//! host, see dns.rs) whatever network namespace the thread is in.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const DEFAULT_SOCKET: &str = "/run/dbus/system_bus_socket";
/// How long a call may take, from the request to its reply, signals and others' messages in
/// between included (resolved answers in milliseconds; polkit may take longer).
const TIMEOUT: Duration = Duration::from_secs(25);
/// The largest message read (header and body). D-Bus allows 128 MiB; what resolved answers
/// wg-exec is a few hundred bytes (a link's servers and domains), so 1 MiB is ample and a
/// claim of more is refused before anything is allocated for it.
pub const MAX_MESSAGE: usize = 1 << 20;
/// Nesting limits of the D-Bus specification (and sd-bus): arrays, structs, and in all.
const MAX_ARRAY_DEPTH: usize = 32;
const MAX_STRUCT_DEPTH: usize = 32;
const MAX_DEPTH: usize = 64;

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

/// Where the single complete type starting at `sig[i]` ends, for a signature that passed
/// [`validate`]; `arrays` and `structs` count the containers around it.
fn complete_type(sig: &[u8], i: usize, arrays: usize, structs: usize) -> Result<usize, DbusError> {
    let bad = |why: &str| {
        broken(format!(
            "a bad D-Bus signature {:?}: {why}",
            String::from_utf8_lossy(sig)
        ))
    };
    if arrays > MAX_ARRAY_DEPTH || structs > MAX_STRUCT_DEPTH || arrays + structs > MAX_DEPTH {
        return Err(bad("nested too deep"));
    }
    match sig.get(i) {
        None => Err(bad("a container without its element type")),
        Some(b'a') => match sig.get(i + 1) {
            Some(b'{') => {
                // A dict entry: a basic key, one value, only as an array's element.
                let key = sig.get(i + 2).copied().unwrap_or(0);
                if !is_basic(key) {
                    return Err(bad("a dict entry's key must be a basic type"));
                }
                let value_end = complete_type(sig, i + 3, arrays + 1, structs + 1)?;
                match sig.get(value_end) {
                    Some(b'}') => Ok(value_end + 1),
                    _ => Err(bad("a dict entry holds exactly a key and a value")),
                }
            }
            _ => complete_type(sig, i + 1, arrays + 1, structs),
        },
        Some(b'(') => {
            let mut j = i + 1;
            if sig.get(j) == Some(&b')') {
                return Err(bad("an empty struct"));
            }
            while sig.get(j) != Some(&b')') {
                j = complete_type(sig, j, arrays, structs + 1)?;
            }
            Ok(j + 1)
        }
        Some(&c) if is_basic(c) || c == b'v' => Ok(i + 1),
        Some(&c) => Err(bad(&format!("{:?} is not a complete type", c as char))),
    }
}

fn is_basic(c: u8) -> bool {
    b"ybnqiuxtdhsog".contains(&c)
}

/// Checks a signature as the D-Bus specification defines it: at most 255 bytes, only known type
/// codes, complete types, bounded nesting.
pub fn validate(sig: &[u8]) -> Result<(), DbusError> {
    if sig.len() > 255 {
        return Err(broken("a D-Bus signature longer than 255 bytes"));
    }
    let mut i = 0;
    while i < sig.len() {
        i = complete_type(sig, i, 0, 0)?;
    }
    Ok(())
}

/// Where the single complete type at `sig[i]` of a validated signature ends.
fn type_end(sig: &[u8], i: usize) -> Result<usize, DbusError> {
    complete_type(sig, i, 0, 0)
}

impl Reader<'_> {
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }
    fn take(&mut self, n: usize) -> Result<&[u8], DbusError> {
        let end = self.pos.saturating_add(n);
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
        if self.take(1)? != [0] {
            return Err(broken("a D-Bus string without its terminating NUL"));
        }
        Ok(s)
    }

    /// One value of the single complete type at `sig[i..]` (of a validated signature), `depth`
    /// containers deep; returns it and the next index.
    fn value(&mut self, sig: &[u8], i: usize, depth: usize) -> Result<(Value, usize), DbusError> {
        if depth > MAX_DEPTH {
            return Err(broken("a D-Bus value nested too deep"));
        }
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
                let inner = self.take(len)?.to_vec();
                if self.take(1)? != [0] {
                    return Err(broken("a D-Bus signature without its terminating NUL"));
                }
                // Exactly one complete type, itself valid.
                validate(&inner)?;
                if inner.is_empty() || type_end(&inner, 0)? != inner.len() {
                    return Err(broken(format!(
                        "a D-Bus variant of {:?}, not one complete type",
                        String::from_utf8_lossy(&inner)
                    )));
                }
                let (v, _) = self.value(&inner, 0, depth + 1)?;
                Value::Variant(Box::new(v))
            }
            b'a' => {
                let len = self.uint(4)? as usize;
                let elem = sig
                    .get(i + 1)
                    .copied()
                    .ok_or_else(|| broken("a truncated D-Bus signature"))?;
                self.align(align_of(elem));
                let end = self.pos.saturating_add(len);
                if end > self.buf.len() {
                    return Err(broken("a D-Bus array longer than its message"));
                }
                let mut items = Vec::new();
                while self.pos < end {
                    let before = self.pos;
                    items.push(self.value(sig, i + 1, depth + 1)?.0);
                    // Every element of a valid signature takes at least one byte; this is the
                    // guard should one not.
                    if self.pos <= before {
                        return Err(broken("a D-Bus array element of no size"));
                    }
                }
                if self.pos != end {
                    return Err(broken("a D-Bus array whose elements overrun its length"));
                }
                Value::Array(items)
            }
            b'(' | b'{' => {
                self.align(8);
                let close = if t == b'(' { b')' } else { b'}' };
                let mut fields = Vec::new();
                let mut j = i + 1;
                while sig.get(j) != Some(&close) {
                    let (v, next) = self.value(sig, j, depth + 1)?;
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

    /// Every value of a signature (validated first), in order.
    fn values(&mut self, sig: &str) -> Result<Vec<Value>, DbusError> {
        let sig = sig.as_bytes();
        validate(sig)?;
        let mut out = Vec::new();
        let mut i = 0;
        while i < sig.len() {
            let (v, next) = self.value(sig, i, 0)?;
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
    /// How long the handshake, and then each call, may take.
    timeout: Duration,
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
        Bus::connect(&socket_path(), TIMEOUT)
    }

    /// [`Bus::system`] on the socket at `path`, the handshake and each call within `timeout`.
    pub fn connect(path: &str, timeout: Duration) -> Result<Bus, DbusError> {
        let stream = UnixStream::connect(path)
            .map_err(|e| broken(format!("cannot connect to the system bus at {path}: {e}")))?;
        let until = Instant::now() + timeout;
        let mut bus = Bus {
            stream,
            serial: 0,
            timeout,
        };
        let fail = |e: DbusError| broken(format!("system bus {path}: {}", e.message));
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        bus.write(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes(), until)
            .map_err(fail)?;
        let line = bus.read_line(until).map_err(fail)?;
        if !line.starts_with("OK ") {
            return Err(broken(format!(
                "the system bus refused authentication as uid {uid}: {}",
                line.trim_end().escape_debug()
            )));
        }
        bus.write(b"BEGIN\r\n", until).map_err(fail)?;
        bus.call_by(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            "",
            Vec::new(),
            until,
        )?;
        Ok(bus)
    }

    /// Time left until `until`, or the error that says it passed.
    fn left(&self, until: Instant) -> Result<Duration, DbusError> {
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| broken(format!("no answer within {} s", self.timeout.as_secs_f32())))
    }

    fn write(&mut self, data: &[u8], until: Instant) -> Result<(), DbusError> {
        let left = self.left(until)?;
        self.stream
            .set_write_timeout(Some(left))
            .and_then(|_| self.stream.write_all(data))
            .map_err(|e| broken(e.to_string()))
    }

    /// Fills `buf`, each read bounded by the time left.
    fn read_exact(&mut self, mut buf: &mut [u8], until: Instant) -> Result<(), DbusError> {
        while !buf.is_empty() {
            let left = self.left(until)?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| broken(e.to_string()))?;
            match self.stream.read(buf) {
                Ok(0) => return Err(broken("the bus closed the connection")),
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.left(until)?;
                    return Err(broken(e.to_string()));
                }
                Err(e) => return Err(broken(e.to_string())),
            }
        }
        Ok(())
    }

    /// One line of the handshake, at most 4096 bytes (longer is cut there).
    fn read_line(&mut self, until: Instant) -> Result<String, DbusError> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") && line.len() < 4096 {
            self.read_exact(&mut byte, until)?;
            line.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Calls a method and returns the values of its reply; an error reply is an error with the
    /// error's name and text. Other messages that arrive meanwhile (signals) are skipped; the
    /// whole call has one deadline.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        signature: &str,
        body: Vec<u8>,
    ) -> Result<Vec<Value>, DbusError> {
        let until = Instant::now() + self.timeout;
        self.call_by(destination, path, interface, member, signature, body, until)
    }

    #[allow(clippy::too_many_arguments)]
    fn call_by(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        signature: &str,
        body: Vec<u8>,
        until: Instant,
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
        self.write(&h.buf, until)
            .map_err(|e| broken(format!("send {what} on the system bus: {}", e.message)))?;
        loop {
            let m = self
                .receive(until)
                .map_err(|e| broken(format!("read the reply to {what}: {}", e.message)))?;
            if m.reply_serial != Some(serial) {
                continue;
            }
            let values = read_body(&m)
                .map_err(|e| broken(format!("read the reply to {what}: {}", e.message)))?;
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

    fn receive(&mut self, until: Instant) -> Result<Message, DbusError> {
        let mut fixed = [0u8; 16];
        self.read_exact(&mut fixed, until)?;
        let (length, _, _) = message_length(&fixed)?;
        let mut all = vec![0u8; length];
        all[..16].copy_from_slice(&fixed);
        self.read_exact(&mut all[16..], until)?;
        parse_message(&all)
    }
}

/// The whole length of a message from its first 16 bytes (refused above [`MAX_MESSAGE`]), where
/// its body starts and where its header fields end.
fn message_length(fixed: &[u8; 16]) -> Result<(usize, usize, usize), DbusError> {
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
    let header_len = (16 + fields_len).div_ceil(8) * 8;
    let length = header_len.saturating_add(body_len);
    if length > MAX_MESSAGE {
        return Err(broken(format!(
            "a message of {length} bytes, more than the {MAX_MESSAGE} read"
        )));
    }
    Ok((length, header_len, 16 + fields_len))
}

/// A whole message (as [`message_length`] measured it): its header fields and body.
fn parse_message(all: &[u8]) -> Result<Message, DbusError> {
    let fixed: &[u8; 16] = all
        .get(..16)
        .and_then(|f| f.try_into().ok())
        .ok_or_else(|| broken("a truncated D-Bus message"))?;
    let (length, header_len, fields_end) = message_length(fixed)?;
    if all.len() != length {
        return Err(broken("a truncated D-Bus message"));
    }
    let big = fixed[0] == b'B';
    let mut r = Reader {
        // The fields array is read within the header's own length.
        buf: &all[..fields_end],
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
    if let Value::Array(fields) = r.value(b"a(yv)", 0, 0)?.0 {
        for f in fields {
            let Value::Struct(kv) = f else { continue };
            let (Some(Value::Int(code)), Some(Value::Variant(v))) = (kv.first(), kv.get(1)) else {
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

/// The values of a message's body, as its signature says.
fn read_body(m: &Message) -> Result<Vec<Value>, DbusError> {
    let mut r = Reader {
        buf: &m.body,
        pos: 0,
        big: m.big,
    };
    r.values(&m.signature)
}

/// Reads bytes as a message and its body, as [`Bus::call`] does after reading it off the socket;
/// for the fuzzer (fuzz/fuzz_targets/dbus.rs). Bytes past the message's length are ignored.
pub fn read_message(data: &[u8]) -> Result<Vec<Value>, DbusError> {
    let fixed: &[u8; 16] = data
        .get(..16)
        .and_then(|f| f.try_into().ok())
        .ok_or_else(|| broken("a truncated D-Bus message"))?;
    let (length, _, _) = message_length(fixed)?;
    let whole = data
        .get(..length)
        .ok_or_else(|| broken("a truncated D-Bus message"))?;
    read_body(&parse_message(whole)?)
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

    #[test]
    fn signatures_are_validated_as_the_specification_says() {
        for good in [
            "",
            "ia(iay)a(sb)b",
            "a{sv}",
            "a(yv)",
            "v",
            &"a".repeat(32),
            "aai",
        ] {
            let good = match good.ends_with('a') {
                true => format!("{good}y"),
                false => good.to_string(),
            };
            assert!(validate(good.as_bytes()).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("a()", "an empty struct"),
            ("()", "an empty struct"),
            ("a", "a container without its element type"),
            ("(i", "a container without its element type"),
            ("{sv}", "'{' is not a complete type"),
            ("a{vs}", "a dict entry's key must be a basic type"),
            ("a{sii}", "a dict entry holds exactly a key and a value"),
            ("a{s}", "is not a complete type"),
            ("z", "'z' is not a complete type"),
            ("i)", "')' is not a complete type"),
        ] {
            let e = validate(bad.as_bytes()).unwrap_err().message;
            assert!(e.contains(why), "{bad}: {e}");
        }
        let deep_arrays = format!("{}y", "a".repeat(33));
        let deep_structs = format!("{}y{}", "(".repeat(33), ")".repeat(33));
        for deep in [deep_arrays, deep_structs] {
            let e = validate(deep.as_bytes()).unwrap_err().message;
            assert!(e.ends_with("nested too deep"), "{e}");
        }
        assert!(validate(&[b'y'; 256]).is_err());
    }

    /// A message as a bus would send it: `kind` (2 reply, 3 error, 4 signal) to `serial`.
    fn message(kind: u8, serial: u32, signature: &str, body: &[u8]) -> Vec<u8> {
        let mut h = Writer::default();
        h.byte(b'l');
        h.byte(kind);
        h.byte(0);
        h.byte(1);
        h.u32(body.len() as u32);
        h.u32(1000 + serial);
        h.array(8, |h| {
            h.begin_struct();
            h.byte(5);
            h.signature("u");
            h.u32(serial);
            h.begin_struct();
            h.byte(8);
            h.signature("g");
            h.signature(signature);
        });
        h.pad(8);
        h.buf.extend_from_slice(body);
        h.buf
    }

    /// Reads one message from the client (for the stand-in bus).
    fn read_request(s: &mut UnixStream) {
        let mut fixed = [0u8; 16];
        s.read_exact(&mut fixed).unwrap();
        let (length, _, _) = message_length(&fixed).unwrap();
        let mut rest = vec![0u8; length - 16];
        s.read_exact(&mut rest).unwrap();
    }

    /// A stand-in bus on a socket in a fresh directory: it runs `serve` on the connection.
    fn stand_in(serve: impl FnOnce(UnixStream) + Send + 'static) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            serve(s);
        });
        (dir, path.to_str().unwrap().to_string())
    }

    /// The handshake and Hello as a bus does them; then `reply` answers the first call.
    fn bus_answering(
        reply: impl FnOnce(&mut UnixStream) + Send + 'static,
    ) -> (tempfile::TempDir, String) {
        stand_in(move |mut s| {
            let mut line = Vec::new();
            let mut b = [0u8];
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut b).unwrap();
                line.push(b[0]);
            }
            s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
                .unwrap();
            let mut begin = [0u8; 7];
            s.read_exact(&mut begin).unwrap();
            read_request(&mut s);
            s.write_all(&message(2, 1, "s", &{
                let mut w = Writer::default();
                w.str(":1.7");
                w.buf
            }))
            .unwrap();
            read_request(&mut s);
            reply(&mut s);
            // Hold the connection open: the client must end the call by itself.
            std::thread::sleep(Duration::from_secs(5));
        })
    }

    const SHORT: Duration = Duration::from_millis(500);

    fn call(path: &str) -> Result<Vec<Value>, DbusError> {
        let mut bus = Bus::connect(path, SHORT)?;
        bus.call("org.example", "/", "org.example.I", "M", "", Vec::new())
    }

    /// Runs a call against a stand-in and checks it ends with an error containing `said`, soon.
    fn fails_promptly(path: &str, said: &str) {
        let started = Instant::now();
        let e = call(path).unwrap_err().to_string();
        assert!(e.contains(said), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    }

    #[test]
    fn a_well_formed_reply_reads_back() {
        let (_d, path) = bus_answering(|s| {
            let mut w = Writer::default();
            w.bool(true);
            s.write_all(&message(4, 0, "b", &w.buf)).unwrap(); // a signal, skipped
            s.write_all(&message(2, 2, "b", &w.buf)).unwrap();
        });
        assert_eq!(call(&path).unwrap(), vec![Value::Int(1)]);
        let (_d, path) = bus_answering(|s| {
            let mut w = Writer::default();
            w.str("no such link");
            s.write_all(&message(3, 2, "s", &w.buf)).unwrap();
        });
        assert_eq!(call(&path).unwrap_err().message, "no such link");
    }

    #[test]
    fn a_hostile_bus_gets_a_prompt_clean_error() {
        // `a()`: an array of empty structs never advanced (it looped, allocating, for ever).
        let (_d, path) = bus_answering(|s| {
            s.write_all(&message(2, 2, "a()", &[8, 0, 0, 0, 0, 0, 0, 0]))
                .unwrap()
        });
        fails_promptly(&path, "an empty struct");
        // A variant in a variant in ... 200 deep (it recursed without a limit).
        let (_d, path) = bus_answering(|s| {
            let mut body = b"\x01v\0".repeat(200);
            body.extend_from_slice(b"\x01y\0\x07");
            s.write_all(&message(2, 2, "v", &body)).unwrap()
        });
        fails_promptly(&path, "nested too deep");
        // Arrays 40 deep in the signature.
        let (_d, path) = bus_answering(|s| {
            let sig = format!("{}y", "a".repeat(40));
            s.write_all(&message(2, 2, &sig, &[0; 8])).unwrap()
        });
        fails_promptly(&path, "nested too deep");
        // An array that claims more than its message holds.
        let (_d, path) = bus_answering(|s| {
            s.write_all(&message(2, 2, "ay", &[0xff, 0xff, 0, 0, 1]))
                .unwrap()
        });
        fails_promptly(&path, "a D-Bus array longer than its message");
        // A message that claims a gigabyte.
        let (_d, path) = bus_answering(|s| {
            let mut m = message(2, 2, "y", &[1]);
            m[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
            let _ = s.write_all(&m);
        });
        fails_promptly(&path, "more than the 1048576 read");
        // Endless messages meant for someone else: the call's deadline still holds.
        let (_d, path) = bus_answering(|s| {
            let m = message(4, 0, "y", &[1]);
            while s.write_all(&m).is_ok() {}
        });
        fails_promptly(&path, "no answer within 0.5 s");
        // A bad byte order.
        let (_d, path) = bus_answering(|s| s.write_all(&[b'X'; 16]).unwrap());
        fails_promptly(&path, "a bad byte order mark 0x58");
    }

    #[test]
    fn a_bus_that_does_not_answer_is_given_up_promptly() {
        // Silent from the start.
        let (_d, path) = stand_in(|_s| std::thread::sleep(Duration::from_secs(5)));
        fails_promptly(&path, "no answer within 0.5 s");
        // Endless text without a line end: cut at 4096 bytes, not an OK.
        let (_d, path) = stand_in(|mut s| while s.write_all(&[b'x'; 1024]).is_ok() {});
        fails_promptly(&path, "the system bus refused authentication");
        // Authenticated, then silent.
        let (_d, path) = bus_answering(|_s| {});
        fails_promptly(
            &path,
            "read the reply to org.example.I.M: no answer within 0.5 s",
        );
        // Closed mid-message.
        let (_d, path) = bus_answering(|s| {
            let _ = s.write_all(&message(2, 2, "y", &[1])[..20]);
            let _ = s.shutdown(std::net::Shutdown::Write);
        });
        fails_promptly(&path, "the bus closed the connection");
    }
}
