#!/usr/bin/env python3
"""Writes the large configurations of the VM test into DIR: 2,000 peers (one /32 and one /128
each), and one peer with 2,500 allowed IPs (the kernel's netlink messages must be split).
Public keys are derived from the index: the peers never handshake, only their configuration
is read back."""
import base64
import sys

out = sys.argv[1]


def key(i, salt):
    return base64.b64encode(i.to_bytes(4, "big") + bytes([salt]) * 28).decode()


def write(name, iface_extra, peers):
    with open(f"{out}/{name}", "w") as f:
        f.write("Interface(\n  ips: [\"192.0.2.1/24\", \"2001:db8:1::1/64\"],\n")
        f.write("  private_key_file: \"/test/keys/big.key\",\n  listen_port: 51900,\n")
        f.write(f"  backend: Kernel,\n  {iface_extra}\n  peers: [\n")
        for p in peers:
            f.write(f"    {p},\n")
        f.write("  ],\n)\n")


peers = [
    f'Peer(public_key: "{key(i, 0x11)}", allowed_ips: ["198.18.{i // 256}.{i % 256}/32", '
    f'"2001:db8:2::{i:x}/128"], endpoint: "198.51.100.{i % 250 + 1}:51820")'
    for i in range(2000)
]
write("big.ron", "", peers)

ips = ", ".join(f'"198.19.{i // 256}.{i % 256}/32"' for i in range(2500))
write(
    "onepeer.ron",
    "allowed_ips_as_routes: false,",
    [f'Peer(public_key: "{key(1, 0x22)}", allowed_ips: [{ips}], persistent_keepalive: 15)'],
)
