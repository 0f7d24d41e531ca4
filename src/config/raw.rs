//! The configuration file as serde reads it: field names and types only. Everything that needs
//! judgement (ranges, keys, CIDRs, names) is checked by `validate` with positions.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

#[derive(Debug, Deserialize)]
#[serde(rename = "Interface", deny_unknown_fields)]
pub struct RawInterface {
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub private_key: Option<String>,
    #[serde(default)]
    pub private_key_file: Option<String>,
    #[serde(default)]
    pub generate_private_key_file: bool,
    #[serde(default)]
    pub listen_port: Option<i64>,
    #[serde(default)]
    pub pre_setup: Lines,
    #[serde(default)]
    pub post_setup: Lines,
    #[serde(default)]
    pub pre_shutdown: Lines,
    #[serde(default)]
    pub post_shutdown: Lines,
    #[serde(default = "default_table")]
    pub table: StrOrInt,
    #[serde(default)]
    pub peers: Vec<RawPeer>,
    #[serde(default = "yes")]
    pub allowed_ips_as_routes: bool,
    #[serde(default)]
    pub socket_namespace: Option<String>,
    #[serde(default)]
    pub interface_namespace: Option<String>,
    #[serde(default)]
    pub fwmark: Option<StrOrInt>,
    #[serde(default)]
    /// A number, or "auto" (wg-quick's automatic MTU).
    pub mtu: Option<StrOrInt>,
    #[serde(default)]
    pub metric: Option<i64>,
    #[serde(default)]
    pub dynamic_endpoint_refresh_seconds: i64,
    #[serde(default)]
    pub backend: BackendChoice,
    #[serde(default = "default_userspace")]
    pub userspace_implementation: String,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default = "yes")]
    pub ipv6_leak_protection: bool,
    /// Where post_setup runs; the wg-quick reader sets `Last` for `PostUp`.
    #[serde(default)]
    pub post_setup_at: PostSetupAt,
}

pub const INTERFACE_FIELDS: &[&str] = &[
    "ips",
    "private_key",
    "private_key_file",
    "generate_private_key_file",
    "listen_port",
    "pre_setup",
    "post_setup",
    "pre_shutdown",
    "post_shutdown",
    "table",
    "peers",
    "allowed_ips_as_routes",
    "socket_namespace",
    "interface_namespace",
    "fwmark",
    "mtu",
    "metric",
    "dynamic_endpoint_refresh_seconds",
    "backend",
    "userspace_implementation",
    "dns",
    "ipv6_leak_protection",
    "post_setup_at",
];

#[derive(Debug, Deserialize)]
#[serde(rename = "Peer", deny_unknown_fields)]
pub struct RawPeer {
    #[serde(default)]
    pub name: Option<String>,
    pub public_key: String,
    #[serde(default)]
    pub preshared_key: Option<String>,
    #[serde(default)]
    pub preshared_key_file: Option<String>,
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub dynamic_endpoint_refresh_seconds: Option<i64>,
    #[serde(default)]
    pub dynamic_endpoint_refresh_restart_seconds: Option<i64>,
    #[serde(default)]
    pub persistent_keepalive: Option<i64>,
}

/// Where an up runs `post_setup`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PostSetupAt {
    /// Right after the link is up, before any peer or route: where the NixOS module runs
    /// postSetup (its peers are units started after the interface's), so a postSetup written
    /// for the module (a route equal to an allowed IP, say) works unchanged. RON's default.
    #[default]
    LinkUp,
    /// After everything (peers, DNS, routes, a full tunnel's policy): where wg-quick runs
    /// `PostUp`. A `.conf` always; `wg-exec convert` writes it into the RON it makes.
    Last,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BackendChoice {
    #[default]
    Auto,
    Kernel,
    Userspace,
}

fn yes() -> bool {
    true
}

fn default_table() -> StrOrInt {
    StrOrInt::Str("main".into())
}

fn default_userspace() -> String {
    "wireguard-go".into()
}

/// Hook lines: one string or a list of strings (the module's `lines` type).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lines(pub Vec<String>);

impl<'de> Deserialize<'de> for Lines {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lines;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Lines, E> {
                Ok(Lines(match s.is_empty() {
                    true => vec![],
                    false => vec![s.to_string()],
                }))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lines, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(Lines(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or an integer (fwmark "0x6e6978" or 7, table "main" or 1234).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrOrInt {
    Str(String),
    Int(i128),
}

impl<'de> Deserialize<'de> for StrOrInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StrOrInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StrOrInt, E> {
                Ok(StrOrInt::Str(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<StrOrInt, E> {
                Ok(StrOrInt::Int(n.into()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<StrOrInt, E> {
                Ok(StrOrInt::Int(n.into()))
            }
            fn visit_i128<E: de::Error>(self, n: i128) -> Result<StrOrInt, E> {
                Ok(StrOrInt::Int(n))
            }
            fn visit_u128<E: de::Error>(self, n: u128) -> Result<StrOrInt, E> {
                i128::try_from(n)
                    .map(StrOrInt::Int)
                    .map_err(|_| E::custom("number too large"))
            }
        }
        d.deserialize_any(V)
    }
}
