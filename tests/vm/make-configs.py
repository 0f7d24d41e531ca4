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

# The benchmark's configurations (scripts/vm-test --bench): the same N peers for wg-exec (RON),
# for `wg setconf` (its key filled in by the guest) and for `ip -batch`.
for n in (1000, 5000):
    bench = [
        f'Peer(public_key: "{key(i, 0x33)}", allowed_ips: ["198.18.{i // 256}.{i % 256}/32", '
        f'"2001:db8:4::{i:x}/128"], endpoint: "198.51.100.{i % 250 + 1}:51820")'
        for i in range(n)
    ]
    write(f"bench-{n}.ron", "mtu: 1420,", bench)
    with open(f"{out}/bench-{n}.conf", "w") as f:
        f.write("[Interface]\nPrivateKey = @KEY@\nListenPort = 51900\n\n")
        for i in range(n):
            f.write(f"[Peer]\nPublicKey = {key(i, 0x33)}\n"
                    f"AllowedIPs = 198.18.{i // 256}.{i % 256}/32, 2001:db8:4::{i:x}/128\n"
                    f"Endpoint = 198.51.100.{i % 250 + 1}:51820\n\n")
    with open(f"{out}/bench-{n}.batch", "w") as f:
        f.write("link set wgb mtu 1420\naddress add 192.0.2.1/24 dev wgb\n"
                "address add 2001:db8:1::1/64 dev wgb\nlink set up dev wgb\n")
        for i in range(n):
            f.write(f"route replace 198.18.{i // 256}.{i % 256}/32 dev wgb\n"
                    f"route replace 2001:db8:4::{i:x}/128 dev wgb\n")
