#!/bin/sh
# The VM test, run as /init's child inside the guest: the kernel backend of wg-exec against
# Debian's own kernel and its wireguard module. Observers: iproute2's ip and wg (by absolute
# path: busybox's shell would run its own ip applet first). Prints one line per check and
# "N passed, M failed" at the end; exits non-zero on any failure.
set -u
IP=/usr/local/sbin/ip
WGX=/usr/local/sbin/wg-exec
passed=0
failed=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }
check() { # description, shell condition
    if eval "$2"; then ok "$1"; else fail "$1"; fi
}
in_ns() { $IP netns exec "$@"; }
run_in() { # ns (init = the guest's own), command...
    if [ "$1" = init ]; then shift; "$@"; else in_ns "$@"; fi
}
ipns() { # ns (init = the guest's own), ip arguments...
    if [ "$1" = init ]; then shift; $IP "$@"; else n=$1; shift; $IP -n "$n" "$@"; fi
}
ping_until() { # ns, address: the first handshake may be lost and retried after 5 s
    i=0
    while [ $i -lt 15 ]; do
        if run_in "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; then return 0; fi
        i=$((i + 1))
    done
    return 1
}
snapshot() { # ns (init = the guest's own)
    for what in "link show" "address show" "-4 route show table all" "-6 route show table all" "-4 rule show" "-6 rule show"; do
        echo "== $what"
        ipns "$1" $what | grep -v 'fe80::\|ff00::/8\|^ *valid_lft\|^ *inet6 fe80'
    done
}
show_dump() { # a wg show dump, private key hidden
    echo "$1" | awk -F'\t' -v OFS='\t' 'NR == 1 { $1 = "(private key)" } NR > 1 { $2 = "(preshared key)" } { print "    " $0 }'
}
field() { # a wg show dump, line, tab-separated field
    echo "$1" | sed -n "$2p" | cut -f "$3"
}
# What every cell of the matrix (the shapes users write x this backend) checks while a's
# interface is up, with b (host_b below) as its peer: pings both ways over IPv4
# and IPv6 through the tunnel, then the device read back with `wg show IFACE dump`.
matrix_while_up() { # prefix, namespace of a's link (init = the guest's own), iface, listen port, endpoint of b
    check "$1: ping a -> b over IPv4" "ping_until $2 192.0.2.2"
    check "$1: ping a -> b over IPv6" "ping_until $2 2001:db8:1::2"
    check "$1: ping b -> a over IPv4" "ping_until b 192.0.2.1"
    check "$1: ping b -> a over IPv6" "ping_until b 2001:db8:1::1"
    dump=$(run_in "$2" wg show "$3" dump)
    show_dump "$dump"
    check "$1: wg show dump: own public key (a's)" "[ \"\$(field \"\$dump\" 1 2)\" = \"$PA\" ]"
    check "$1: wg show dump: listen port $4" "[ \"\$(field \"\$dump\" 1 3)\" = $4 ]"
    check "$1: wg show dump: exactly one peer, b's public key" "[ \$(echo \"\$dump\" | wc -l) = 2 ] && [ \"\$(field \"\$dump\" 2 1)\" = \"$PB\" ]"
    check "$1: wg show dump: peer endpoint $5" "[ \"\$(field \"\$dump\" 2 3)\" = $5 ]"
    check "$1: wg show dump: peer allowed IPs 192.0.2.2/32,2001:db8:1::2/128" "[ \"\$(field \"\$dump\" 2 4)\" = 192.0.2.2/32,2001:db8:1::2/128 ]"
    check "$1: wg show dump: peer preshared key" "[ \"\$(field \"\$dump\" 2 2)\" = \"$PSK\" ]"
    check "$1: wg show dump: a handshake happened" "case \"\$(field \"\$dump\" 2 5)\" in ''|0) false ;; esac"
}

mkdir -p /test/keys /etc/wg-exec
umask 077
for k in a b c big; do wg genkey > /test/keys/$k.key; done
wg genpsk > /test/keys/ab.psk
PA=$(wg pubkey < /test/keys/a.key)
PB=$(wg pubkey < /test/keys/b.key)
PSK=$(cat /test/keys/ab.psk)

echo "# kernel $(uname -r)"
check "wireguard is not loaded at start" "! grep -q '^wireguard ' /proc/modules"
# nftables (section 7's full tunnels: wg-exec runs `nft -f -`, and never modprobes nftables):
# this kernel loads nfnetlink, nf_tables and the expressions on demand (request_module runs
# /sbin/modprobe, busybox's, with the modules.dep and modules.alias of busybox depmod), as a
# distribution's kernel does. Probed here, in a scratch namespace, while automatic loading is
# still on; the modules stay loaded for section 7. Should the probe fail, they are loaded by
# hand so that section 7 still runs (test setup, not wg-exec's job).
$IP netns add nftprobe
nft_out=$(in_ns nftprobe nft -f - 2>&1 <<'NFT'
table ip probe {
    chain c { type filter hook prerouting priority -150; meta l4proto udp ct mark 51820 meta mark set ct mark; fib saddr type != local drop; }
}
table ip6 probe {
    chain c { type filter hook prerouting priority -150; meta l4proto udp ct mark 51820 meta mark set ct mark; fib saddr type != local drop; }
}
NFT
); rc=$?
[ -n "$nft_out" ] && echo "$nft_out" | sed 's/^/    /'
check "the kernel autoloads nftables' modules for nft (nf_tables, nft_ct, nft_fib_ipv4, nft_fib_ipv6)" \
    "[ $rc = 0 ] && grep -q '^nf_tables ' /proc/modules && grep -q '^nft_ct ' /proc/modules && grep -q '^nft_fib_ipv4 ' /proc/modules && grep -q '^nft_fib_ipv6 ' /proc/modules"
$IP netns del nftprobe
for mod in nf_tables nft_ct nft_fib_ipv4 nft_fib_ipv6; do
    grep -q "^$mod " /proc/modules || modprobe $mod
done
# veth now, then no more automatic module loading: only wg-exec's modprobe step can load
# wireguard from here on.
modprobe veth
echo > /proc/sys/kernel/modprobe

# Two test hosts a (203.0.113.1) and b (203.0.113.2) joined by veth; the guest's own namespace
# ("init") reaches b over a second pair (198.51.100.1 -> .2).
for ns in a b t; do $IP netns add $ns; $IP -n $ns link set lo up; done
$IP -n a link add va type veth peer name vb netns b
$IP -n a address add 203.0.113.1/24 dev va; $IP -n a address add 2001:db8:ffff::1/64 dev va nodad
$IP -n b address add 203.0.113.2/24 dev vb; $IP -n b address add 2001:db8:ffff::2/64 dev vb nodad
$IP -n a link set va up; $IP -n b link set vb up
$IP link add vr type veth peer name vr2 netns b
$IP address add 198.51.100.1/24 dev vr; $IP -n b address add 198.51.100.2/24 dev vr2
$IP link set vr up; $IP -n b link set vr2 up

host_b() { # name of b's interface, endpoint of a
    cat > /etc/wg-exec/$1.ron <<RON
Interface(
    ips: ["192.0.2.2/24", "2001:db8:1::2/64"],
    private_key_file: "/test/keys/b.key",
    listen_port: 51821,
    socket_namespace: "b",
    backend: Kernel,
    peers: [Peer(public_key: "$PA", preshared_key_file: "/test/keys/ab.psk",
        allowed_ips: ["192.0.2.1/32", "2001:db8:1::1/128"], endpoint: "$2")],
)
RON
    $WGX up $1
}

# --- 1. Two hosts, kernel WireGuard, loaded by wg-exec's modprobe step.
cat > /etc/wg-exec/wga.ron <<RON
Interface(
    ips: ["192.0.2.1/24", "2001:db8:1::1/64"],
    private_key_file: "/test/keys/a.key",
    listen_port: 51820,
    fwmark: "0x77",
    mtu: 1400,
    socket_namespace: "a",
    backend: Kernel,
    peers: [Peer(public_key: "$PB", preshared_key_file: "/test/keys/ab.psk",
        allowed_ips: ["192.0.2.2/32", "2001:db8:1::2/128"], endpoint: "203.0.113.2:51821",
        persistent_keepalive: 25)],
)
RON
before_a=$(snapshot a)
out=$($WGX -v up wga 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
check "wg-exec up wga (kernel backend) exits 0" "[ $rc = 0 ]"
check "wireguard was loaded by wg-exec's modprobe step" "grep -q '^wireguard ' /proc/modules && echo \"\$out\" | grep -q 'module wireguard is loaded'"
check "wga is a kernel wireguard link in netns a" "$IP -n a -d link show wga | grep -q 'wireguard'"
host_b wgb "203.0.113.1:51820"
dump=$(in_ns a wg show wga dump)
echo "$dump" | sed 's/^/    /; s/\t[A-Za-z0-9+\/]\{43\}=\t/\t<key>\t/'
check "listen port 51820 and fwmark 0x77" "echo \"\$dump\" | head -1 | awk -F'\t' '\$3==51820 && \$4==\"0x77\"' | grep -q ."
check "preshared key, endpoint, allowed IPs, keepalive" "echo \"\$dump\" | sed -n 2p | awk -F'\t' -v psk=\"$PSK\" '\$2==psk && \$3==\"203.0.113.2:51821\" && \$4==\"192.0.2.2/32,2001:db8:1::2/128\" && \$8==25' | grep -q ."
check "mtu 1400" "$IP -n a link show wga | grep -q 'mtu 1400'"
check "ping a -> b over IPv4 through the kernel tunnel" "ping_until a 192.0.2.2"
check "ping a -> b over IPv6" "ping_until a 2001:db8:1::2"
check "ping b -> a over IPv4" "ping_until b 192.0.2.1"
check "ping b -> a over IPv6" "ping_until b 2001:db8:1::1"
$WGX down wga; rc=$?
check "wg-exec down wga exits 0" "[ $rc = 0 ]"
check "down leaves netns a as it was" "[ \"\$(snapshot a)\" = \"\$before_a\" ]"
$WGX down wgb
check "a second down of a gone interface succeeds" "$WGX down wga"

# --- 2. The matrix, kernel column: the shapes users write, each with up, pings both ways over
#        IPv4 and IPv6, `wg show dump` read back, down, and no trace. Descriptions start with
#        "matrix kernel SHAPE:" (the README's matrix points at them).

# The plain shape: no namespace option and no backend (Auto, which must pick the kernel here),
# with wg-exec run inside a namespace the test made. The same file serves both plain cells; its
# keys are copies, so that the non-root cell can own them without taking a's keys from root.
mkdir -m 755 /test/plain
cp /test/keys/a.key /test/keys/ab.psk /test/plain/
cat > /etc/wg-exec/wgp.ron <<RON
Interface(
    ips: ["192.0.2.1/24", "2001:db8:1::1/64"],
    private_key_file: "/test/plain/a.key",
    listen_port: 51820,
    peers: [Peer(public_key: "$PB", preshared_key_file: "/test/plain/ab.psk",
        allowed_ips: ["192.0.2.2/32", "2001:db8:1::2/128"], endpoint: "203.0.113.2:51821")],
)
RON
plain_shape="! grep -qE 'namespace|backend' /etc/wg-exec/wgp.ron"

m="matrix kernel plain"
check "$m: the configuration has no namespace option and no backend field" "$plain_shape"
before_a=$(snapshot a)
host_b wgb "203.0.113.1:51820"
out=$(in_ns a $WGX -v up wgp 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
check "$m: ip netns exec a wg-exec up wgp exits 0" "[ $rc = 0 ]"
check "$m: wgp is a kernel wireguard link in netns a (ip -d link show)" "$IP -n a -d link show wgp | grep -q '^ *wireguard'"
check "$m: nothing was made outside netns a" "! $IP link show wgp >/dev/null 2>&1 && ! $IP -n t link show wgp >/dev/null 2>&1"
matrix_while_up "$m" a wgp 51820 203.0.113.2:51821
out=$(in_ns a $WGX down wgp 2>&1); rc=$?
[ -n "$out" ] && echo "$out" | sed 's/^/    /'
check "$m: ip netns exec a wg-exec down wgp exits 0" "[ $rc = 0 ]"
check "$m: no trace in netns a" "[ \"\$(snapshot a)\" = \"\$before_a\" ]"
$WGX down wgb

# The plain shape again, run as an unprivileged user (uid 65534) holding only the ambient
# capabilities a systemd unit would give it: CAP_NET_ADMIN, and CAP_SYS_MODULE for modprobe.
# The module is unloaded first (when it can be), so that this run loads it itself.
m="matrix kernel plain non-root"
NOBODY="/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_admin,+sys_module --ambient-caps=+net_admin,+sys_module"
nr_state=/run/wg-exec-65534
mkdir -m 700 $nr_state
chown 65534:65534 $nr_state /etc/wg-exec/wgp.ron /test/plain/a.key /test/plain/ab.psk
as_nobody() { # wg-exec arguments: wg-exec as uid 65534 inside netns a
    in_ns a $NOBODY env WG_EXEC_STATE_DIR=$nr_state $WGX "$@"
}
status=$(in_ns a $NOBODY cat /proc/self/status)
check "$m: the configuration has no namespace option and no backend field" "$plain_shape"
check "$m: setpriv gives uid 65534 with CAP_NET_ADMIN and CAP_SYS_MODULE only (CapEff 11000)" \
    "echo \"\$status\" | grep -q '^Uid:.65534.65534' && echo \"\$status\" | grep -q '^CapEff:.0000000000011000\$' && echo \"\$status\" | grep -q '^CapAmb:.0000000000011000\$'"
i=0
while grep -q '^wireguard ' /proc/modules && [ $i -lt 10 ]; do
    rmmod wireguard 2>/dev/null || sleep 1
    i=$((i + 1))
done
unloaded=no; grep -q '^wireguard ' /proc/modules || unloaded=yes
[ $unloaded = yes ] || echo "# wireguard could not be unloaded: its modprobe step is not checked in this cell"
before_a=$(snapshot a)
out=$(as_nobody -v up wgp 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
check "$m: wg-exec up wgp as uid 65534 in netns a exits 0" "[ $rc = 0 ]"
if [ $unloaded = yes ]; then
    check "$m: wireguard was loaded by its modprobe step" "grep -q '^wireguard ' /proc/modules && echo \"\$out\" | grep -q 'module wireguard is loaded'"
fi
check "$m: wgp is a kernel wireguard link in netns a (ip -d link show)" "$IP -n a -d link show wgp | grep -q '^ *wireguard'"
check "$m: its journal is in WG_EXEC_STATE_DIR, owned by uid 65534" "[ \"\$(stat -c %u $nr_state/wgp.ron 2>/dev/null)\" = 65534 ]"
host_b wgb "203.0.113.1:51820"
matrix_while_up "$m" a wgp 51820 203.0.113.2:51821
out=$(as_nobody down wgp 2>&1); rc=$?
[ -n "$out" ] && echo "$out" | sed 's/^/    /'
check "$m: wg-exec down wgp as uid 65534 in netns a exits 0" "[ $rc = 0 ]"
check "$m: no trace in netns a" "[ \"\$(snapshot a)\" = \"\$before_a\" ]"
check "$m: its journal is gone from WG_EXEC_STATE_DIR" "[ ! -e $nr_state/wgp.ron ]"
$WGX down wgb

# The module's namespace scenarios; the UDP socket stays where the link was created.
scenario() { # shape, namespaces fields, namespace of the link, endpoint of a as b sees it, endpoint of b
    m="matrix kernel $1"
    cat > /etc/wg-exec/wgs.ron <<RON
Interface(
    ips: ["192.0.2.1/24", "2001:db8:1::1/64"],
    private_key_file: "/test/keys/a.key",
    listen_port: 51820,
    backend: Kernel,
    $2
    peers: [Peer(public_key: "$PB", preshared_key_file: "/test/keys/ab.psk",
        allowed_ips: ["192.0.2.2/32", "2001:db8:1::2/128"], endpoint: "$5")],
)
RON
    before=$(snapshot a; snapshot t; snapshot init)
    host_b wgb "$4"
    $WGX up wgs; rc=$?
    check "$m: up exits 0" "[ $rc = 0 ]"
    show="ipns $3 -d link show wgs"
    check "$m: wgs is a kernel wireguard link in $3" "$show 2>/dev/null | grep -q '^ *wireguard'"
    case $2 in *"mtu: 1280"*)
        check "$m: mtu 1280" "$show | grep -q ' mtu 1280 '" ;;
    esac
    matrix_while_up "$m" "$3" wgs 51820 "$5"
    $WGX down wgs; rc=$?
    check "$m: down exits 0 and the link is gone" "[ $rc = 0 ] && ! $show >/dev/null 2>&1"
    check "$m: no trace in a, t or the guest's own namespace" "[ \"\$(snapshot a; snapshot t; snapshot init)\" = \"\$before\" ]"
    $WGX down wgb
}
scenario "socket_namespace only" 'socket_namespace: "a",' a "203.0.113.1:51820" "203.0.113.2:51821"
scenario "interface_namespace only" 'interface_namespace: "t", mtu: 1280,' t "198.51.100.1:51820" "198.51.100.2:51821"
scenario "socket and interface namespace" 'socket_namespace: "a", interface_namespace: "t",' t "203.0.113.1:51820" "203.0.113.2:51821"
scenario "socket_namespace with interface_namespace init" 'socket_namespace: "a", interface_namespace: "init",' init "203.0.113.1:51820" "203.0.113.2:51821"

# --- 3. Routes in a numbered table with a metric.
cat > /etc/wg-exec/wgr.ron <<RON
Interface(ips: ["192.0.2.1/24"], private_key_file: "/test/keys/a.key", table: "1234", metric: 50,
    socket_namespace: "a", backend: Kernel,
    peers: [Peer(public_key: "$PB", allowed_ips: ["192.0.2.2/32", "198.18.0.0/15", "2001:db8:5::/48"])])
RON
$WGX up wgr
check "routes in table 1234 with metric 50 (v4)" "[ \$($IP -n a -4 route show table 1234 | grep -c 'dev wgr .*metric 50') = 2 ]"
check "routes in table 1234 with metric 50 (v6)" "$IP -n a -6 route show table 1234 | grep -q '2001:db8:5::/48 dev wgr metric 50'"
$WGX down wgr
check "no routes left in table 1234" "[ -z \"\$($IP -n a route show table 1234)\" ]"

# --- 4. Large configurations read back completely (netlink message splitting).
$WGX up wgbig --config /test/big.ron; rc=$?
check "2,000 peers: up exits 0" "[ $rc = 0 ]"
check "2,000 peers in wg show dump" "[ \$(wg show wgbig dump | tail -n +2 | wc -l) = 2000 ]"
check "4,000 allowed IPs in wg show" "[ \$(wg show wgbig allowed-ips | tr ' \t' '\n\n' | grep -cE '^[0-9a-f:.]+/[0-9]+\$') = 4000 ]"
check "4,000 routes" "[ \$(($($IP -4 route show dev wgbig | grep -c '^198.18') + $($IP -6 route show dev wgbig | grep -c '^2001:db8:2::'))) = 4000 ]"
$WGX down wgbig --config /test/big.ron
$WGX up wgone --config /test/onepeer.ron; rc=$?
check "one peer with 2,500 allowed IPs: up exits 0" "[ $rc = 0 ]"
check "2,500 allowed IPs of one peer read back" "[ \$(wg show wgone allowed-ips | tr ' \t' '\n\n' | grep -c '^198.19') = 2500 ]"
check "its keepalive" "[ \"\$(wg show wgone persistent-keepalive | awk '{print \$2}')\" = 15 ]"
$WGX down wgone --config /test/onepeer.ron

# --- 5. A failure in the middle of up leaves no trace.
before_a=$(snapshot a)
for case in 'post_setup: "exit 1",|198.18.77.1/24|post_setup' '|ff02::1/128|addresses'; do
    extra=${case%%|*}; rest=${case#*|}; addr=${rest%%|*}; step=${rest#*|}
    cat > /etc/wg-exec/wgf.ron <<RON
Interface(ips: ["192.0.2.1/24", "$addr"], private_key_file: "/test/keys/a.key", mtu: 1380,
    listen_port: 51820, table: "77", socket_namespace: "a", interface_namespace: "t", backend: Kernel,
    $extra
    peers: [Peer(public_key: "$PB", preshared_key_file: "/test/keys/ab.psk", allowed_ips: ["198.18.0.0/24"], endpoint: "203.0.113.2:51821")])
RON
    before_t=$(snapshot t)
    out=$($WGX up wgf 2>&1); rc=$?
    echo "$out" | sed 's/^/    /'
    check "failing $step: exit 1 naming the step" "[ $rc = 1 ] && echo \"\$out\" | grep -q \"failed at step '$step'\""
    check "failing $step: no trace in a or t" "[ \"\$(snapshot a)\" = \"\$before_a\" ] && [ \"\$(snapshot t)\" = \"\$before_t\" ]"
done

# --- 6. reload and status (kernel backend). The plain shape: wg-exec run inside netns a, no
#        namespace option, no backend (Auto picks the kernel). a's peers: b (real, its session
#        watched through every reload), p2 (goes), p3 (endpoint and keepalive change), p4 (new).
#        Descriptions start with "reload kernel:" and "status kernel:".
for k in p2 p3 p4; do wg genkey | wg pubkey > /test/keys/$k.pub; done
P2=$(cat /test/keys/p2.pub); P3=$(cat /test/keys/p3.pub); P4=$(cat /test/keys/p4.pub)
TAB=$(printf '\t')
wgk_conf() { # mtu, extra addresses, b's keepalive, peers after b
    cat > /etc/wg-exec/wgk.ron <<RON
Interface(
    ips: ["192.0.2.1/24", "2001:db8:1::1/64"$2],
    private_key_file: "/test/keys/a.key",
    listen_port: 51820,
    mtu: $1,
    peers: [
        Peer(name: "b", public_key: "$PB", preshared_key_file: "/test/keys/ab.psk",
            allowed_ips: ["192.0.2.2/32", "2001:db8:1::2/128"], endpoint: "203.0.113.2:51821",
            persistent_keepalive: $3),
        $4
    ],
)
RON
}
p2="Peer(name: \"p2\", public_key: \"$P2\", allowed_ips: [\"198.18.2.0/24\"], endpoint: \"203.0.113.12:51820\"),"
p3_before="Peer(name: \"p3\", public_key: \"$P3\", allowed_ips: [\"198.18.3.0/24\"], endpoint: \"203.0.113.13:51820\", persistent_keepalive: 30),"
p3_after="Peer(name: \"p3\", public_key: \"$P3\", allowed_ips: [\"198.18.3.0/24\"], endpoint: \"203.0.113.23:51823\", persistent_keepalive: 15),"
p4="Peer(name: \"p4\", public_key: \"$P4\", allowed_ips: [\"198.18.4.0/24\", \"2001:db8:4::/48\"], endpoint: \"203.0.113.14:51820\"),"
wgk() { in_ns a $WGX "$@"; }
handshake_of() { # peer key: its latest handshake on wgk (seconds since the epoch)
    in_ns a wg show wgk latest-handshakes | awk -v k="$1" '$1 == k { print $2 }'
}
transfer_of() { # peer key: "rx tx" on wgk
    in_ns a wg show wgk transfer | awk -v k="$1" '$1 == k { print $2 " " $3 }'
}
not_reset() { # transfer before, transfer after: neither counter went down
    set -- $1 $2
    [ -n "${4:-}" ] && [ "$3" -ge "$1" ] && [ "$4" -ge "$2" ] && [ $(($3 + $4)) -gt $(($1 + $2)) ]
}
peer_order() { # the peers of wgk's dump as names, in the kernel's order
    in_ns a wg show wgk dump | tail -n +2 | cut -f 1 \
        | sed "s|^$PB\$|b|; s|^$P2\$|p2|; s|^$P3\$|p3|; s|^$P4\$|p4|" | tr '\n' ' ' | sed 's/ $//'
}
status_is() { # description, expected exit code, status arguments...: runs status, shows it
    d=$1; want=$2; shift 2    # (--json only when its exit code is not the expected one)
    st=$(wgk status wgk "$@" 2>&1); src=$?
    case " $* " in *" --json "*) [ $src = $want ] || echo "$st" | sed 's/^/    /' ;;
        *) echo "$st" | sed 's/^/    /' ;; esac
    check "$d (exit $want)" "[ $src = $want ]"
}
show_out() { [ -n "$1" ] && echo "$1" | sed 's/^/    /'; }

r="reload kernel"; s="status kernel"
wgk_conf 1400 "" 25 "$p2
        $p3_before"
check "$r: the configuration has no namespace option and no backend field" "! grep -qE 'namespace|backend' /etc/wg-exec/wgk.ron"
before_a=$(snapshot a)
host_b wgb "203.0.113.1:51820"
out=$(wgk up wgk 2>&1); rc=$?
show_out "$out"
check "$r: ip netns exec a wg-exec up wgk exits 0" "[ $rc = 0 ]"
check "$r: wgk is a kernel wireguard link in netns a" "$IP -n a -d link show wgk | grep -q '^ *wireguard'"
check "$r: ping a -> b through wgk (b's session is up)" "ping_until a 192.0.2.2"
check "$r: peers b p2 p3 on the device" "[ \"\$(peer_order)\" = 'b p2 p3' ]"
check "$r: routes for p2's and p3's allowed IPs" "$IP -n a route show dev wgk | grep -q '^198.18.2.0/24' && $IP -n a route show dev wgk | grep -q '^198.18.3.0/24'"
status_is "$s: in sync after up" 0
check "$s: says in sync after up" "echo \"\$st\" | tail -1 | grep -qx 'in sync'"
status_is "$s: --json in sync after up" 0 --json
check "$s: --json says \"state\": \"in sync\"" "echo \"\$st\" | grep -q '\"state\": \"in sync\"'"

# 6.1 The reload: p4 comes, p2 goes, p3's endpoint and keepalive change, an address comes, the
#     MTU changes; b, unchanged, pings through it all.
wgk_conf 1380 ', "198.18.44.1/24"' 25 "$p3_after
        $p4"
plan=$(wgk reload wgk --print 2>&1); rc=$?
echo "    plan:"; show_out "$plan"
check "$r: --print exits 0" "[ $rc = 0 ]"
check "$r: the plan removes one peer, p2" "[ \$(echo \"\$plan\" | grep -c ' remove\$') = 1 ] && echo \"\$plan\" | grep -qx 'wg set wgk peer $P2 remove'"
check "$r: the plan updates p3 in place: endpoint and keepalive only, no remove" "echo \"\$plan\" | grep -qx 'wg set wgk peer $P3 endpoint 203.0.113.23:51823 persistent-keepalive 15'"
check "$r: the plan does not touch b" "! echo \"\$plan\" | grep -q '$PB'"
# b's session settled first: its latest handshake over 6 s old, past WireGuard's REKEY_TIMEOUT
# (5 s). A first initiation that was lost is retried 5 s later and makes a second handshake;
# had that retry landed during the reload, it would look like the reload's doing (CI saw it
# once: the handshake moved by 5 s).
hs_settled() {
    hs=$(handshake_of "$PB")
    [ -n "$hs" ] && [ "$hs" != 0 ] && [ $(($(date +%s) - hs)) -ge 6 ]
}
settled=no; i=0
while [ $i -lt 150 ]; do if hs_settled; then settled=yes; break; fi; sleep 0.2; i=$((i + 1)); done
check "$r: b's session is settled before the reload (latest handshake over 6 s old)" "[ $settled = yes ]"
hs_before=$(handshake_of "$PB"); xfer_before=$(transfer_of "$PB")
echo "    b before: handshake $hs_before, transfer $xfer_before"
in_ns a ping -i 0.02 -c 500 192.0.2.2 > /tmp/reload-ping.out 2>&1 &
ping_pid=$!
sleep 1
out=$(wgk -v reload wgk 2>&1); rc=$?
pinging=no; kill -0 $ping_pid 2>/dev/null && pinging=yes
show_out "$out"
check "$r: wg-exec reload wgk exits 0" "[ $rc = 0 ]"
wait $ping_pid
tail -2 /tmp/reload-ping.out | sed 's/^/    /'
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' /tmp/reload-ping.out)
got=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/reload-ping.out)
check "$r: the ping (every 20 ms) was still running when the reload ended" "[ $pinging = yes ]"
check "$r: no ping lost during the reload ($got of $sent)" "[ -n \"$sent\" ] && [ \"$sent\" -gt 0 ] && [ \"$sent\" = \"$got\" ]"
hs_after=$(handshake_of "$PB"); xfer_after=$(transfer_of "$PB")
echo "    b after: handshake $hs_after, transfer $xfer_after"
check "$r: b's latest handshake is unchanged" "[ -n \"$hs_before\" ] && [ \"$hs_before\" != 0 ] && [ \"$hs_after\" = \"$hs_before\" ]"
check "$r: b's transfer counters were not reset" "not_reset '$xfer_before' '$xfer_after'"
dump=$(in_ns a wg show wgk dump)
show_dump "$dump"
p3_line=$(echo "$dump" | grep "^$P3$TAB")
p4_line=$(echo "$dump" | grep "^$P4$TAB")
check "$r: wg show dump: peers b p3 p4, in that order (p3 kept its place: not removed and added again)" "[ \"\$(peer_order)\" = 'b p3 p4' ]"
check "$r: wg show dump: p3's endpoint 203.0.113.23:51823 and keepalive 15" "[ \"\$(echo \"\$p3_line\" | cut -f 3)\" = 203.0.113.23:51823 ] && [ \"\$(echo \"\$p3_line\" | cut -f 8)\" = 15 ]"
check "$r: wg show dump: p3's allowed IPs 198.18.3.0/24" "[ \"\$(echo \"\$p3_line\" | cut -f 4)\" = 198.18.3.0/24 ]"
check "$r: wg show dump: p4 with endpoint 203.0.113.14:51820 and allowed IPs 198.18.4.0/24,2001:db8:4::/48" "[ \"\$(echo \"\$p4_line\" | cut -f 3)\" = 203.0.113.14:51820 ] && [ \"\$(echo \"\$p4_line\" | cut -f 4)\" = 198.18.4.0/24,2001:db8:4::/48 ]"
check "$r: wg show dump: b's endpoint, allowed IPs and keepalive as before" "echo \"\$dump\" | grep \"^$PB$TAB\" | awk -F'\t' '\$3 == \"203.0.113.2:51821\" && \$4 == \"192.0.2.2/32,2001:db8:1::2/128\" && \$8 == 25' | grep -q ."
check "$r: the -v log updates one peer and removes one (p2), and never names p3 with a removal" "echo \"\$out\" | grep -q 'updated 1 changed peer of' && echo \"\$out\" | grep -q 'removed 1 peer of' && ! echo \"\$out\" | grep -i 'remov' | grep -qF -e '$P3' -e p3"
check "$r: ip: mtu 1380" "$IP -n a link show wgk | grep -q ' mtu 1380 '"
check "$r: ip: the new address 198.18.44.1/24, and the old ones" "$IP -n a address show dev wgk | grep -q 'inet 198.18.44.1/24' && $IP -n a address show dev wgk | grep -q 'inet 192.0.2.1/24' && $IP -n a address show dev wgk | grep -q 'inet6 2001:db8:1::1/64'"
check "$r: ip: routes for p4's allowed IPs (198.18.4.0/24, 2001:db8:4::/48)" "$IP -n a -4 route show dev wgk | grep -q '^198.18.4.0/24' && $IP -n a -6 route show dev wgk | grep -q '^2001:db8:4::/48'"
check "$r: ip: no route for p2's allowed IPs (198.18.2.0/24), p3's still there" "! $IP -n a route show table all | grep -q '198.18.2.0/24' && $IP -n a -4 route show dev wgk | grep -q '^198.18.3.0/24'"
check "$r: ping a -> b after the reload" "ping_until a 192.0.2.2"
out=$(wgk reload wgk --print 2>/tmp/reload-print.err); rc=$?
show_out "$out"; show_out "$(cat /tmp/reload-print.err)"
check "$r: the same configuration again: --print exits 0 and prints nothing" "[ $rc = 0 ] && [ -z \"\$out\" ]"
out=$(wgk -v reload wgk 2>&1); rc=$?
show_out "$out"
check "$r: the same configuration again: reload exits 0 with nothing to change" "[ $rc = 0 ] && echo \"\$out\" | grep -q 'nothing to change'"
status_is "$s: in sync after the reload" 0
check "$s: says in sync after the reload" "echo \"\$st\" | tail -1 | grep -qx 'in sync'"

# 6.2 A changed peer keeps its session: b's own keepalive changes (25 -> 20), in place.
wgk_conf 1380 ', "198.18.44.1/24"' 20 "$p3_after
        $p4"
plan=$(wgk reload wgk --print 2>&1)
echo "    plan:"; show_out "$plan"
check "$r: b's keepalive changes: the plan is one in-place update of b" "[ \"\$plan\" = 'wg set wgk peer $PB persistent-keepalive 20' ]"
hs_before=$(handshake_of "$PB"); xfer_before=$(transfer_of "$PB")
out=$(wgk -v reload wgk 2>&1); rc=$?
show_out "$out"
check "$r: b's keepalive changes: reload exits 0" "[ $rc = 0 ]"
check "$r: b's keepalive changes: the -v log removes no peer" "! echo \"\$out\" | grep -qi 'remov'"
check "$r: b's keepalive changes: keepalive 20 on the device" "[ \"\$(in_ns a wg show wgk persistent-keepalive | awk -v k=\"$PB\" '\$1 == k { print \$2 }')\" = 20 ]"
check "$r: b's keepalive changes: ping a -> b" "ping_until a 192.0.2.2"
hs_after=$(handshake_of "$PB"); xfer_after=$(transfer_of "$PB")
echo "    b: handshake $hs_before -> $hs_after, transfer $xfer_before -> $xfer_after"
check "$r: b's keepalive changes: b's session is kept (same latest handshake, counters not reset, still first)" "[ -n \"$hs_before\" ] && [ \"$hs_after\" = \"$hs_before\" ] && not_reset '$xfer_before' '$xfer_after' && [ \"\$(peer_order)\" = 'b p3 p4' ]"

# 6.3 A prefix moving from one peer to another in one reload: 198.18.4.0/24 from p4 to p3.
wgk_conf 1380 ', "198.18.44.1/24"' 20 "Peer(name: \"p3\", public_key: \"$P3\", allowed_ips: [\"198.18.3.0/24\", \"198.18.4.0/24\"], endpoint: \"203.0.113.23:51823\", persistent_keepalive: 15),
        Peer(name: \"p4\", public_key: \"$P4\", allowed_ips: [\"2001:db8:4::/48\"], endpoint: \"203.0.113.14:51820\"),"
plan=$(wgk reload wgk --print 2>&1); rc=$?
echo "    plan:"; show_out "$plan"
gain=$(echo "$plan" | grep -n "^wg set wgk peer $P3 " | cut -d: -f1)
lose=$(echo "$plan" | grep -n "^wg set wgk peer $P4 " | cut -d: -f1)
check "$r: moving 198.18.4.0/24 from p4 to p3: the plan adds it to p3 (+198.18.4.0/24)" "echo \"\$plan\" | grep -qx 'wg set wgk peer $P3 allowed-ips +198.18.4.0/24'"
check "$r: moving 198.18.4.0/24 from p4 to p3: the plan replaces p4's list without it" "echo \"\$plan\" | grep -qx 'wg set wgk peer $P4 allowed-ips 2001:db8:4::/48'"
check "$r: moving 198.18.4.0/24 from p4 to p3: the gaining peer's update comes before the losing peer's" "[ -n \"$gain\" ] && [ -n \"$lose\" ] && [ \"$gain\" -lt \"$lose\" ]"
check "$r: moving 198.18.4.0/24: the plan does not remove its route" "! echo \"\$plan\" | grep -q 'route.*198.18.4.0/24'"
out=$(wgk -v reload wgk 2>&1); rc=$?
show_out "$out"
check "$r: moving 198.18.4.0/24 from p4 to p3: reload exits 0" "[ $rc = 0 ]"
aips=$(in_ns a wg show wgk allowed-ips)
echo "$aips" | sed 's/^/    /'
check "$r: moving 198.18.4.0/24: wg show allowed-ips has it on p3" "echo \"\$aips\" | grep \"^$P3$TAB\" | tr ' \t' '\n\n' | grep -qx 198.18.4.0/24"
check "$r: moving 198.18.4.0/24: and on p3 only (not on p4, not twice)" "[ \$(echo \"\$aips\" | tr ' \t' '\n\n' | grep -cx 198.18.4.0/24) = 1 ] && ! echo \"\$aips\" | grep \"^$P4$TAB\" | grep -q 198.18.4.0/24"
check "$r: moving 198.18.4.0/24: p4 keeps 2001:db8:4::/48" "[ \"\$(echo \"\$aips\" | grep \"^$P4$TAB\" | cut -f 2)\" = 2001:db8:4::/48 ]"
check "$r: moving 198.18.4.0/24: its route is still there" "$IP -n a -4 route show dev wgk | grep -q '^198.18.4.0/24'"
status_is "$s: in sync after the move" 0

# 6.4 status on drift made by hand, and reload repairing it.
in_ns a wg set wgk peer "$P4" remove
status_is "$s: p4 removed by hand (wg set wgk peer P4 remove): drifted" 1
check "$s: a line names the missing peer p4" "echo \"\$st\" | grep -q \"peer p4 ($P4) is missing from the device\""
check "$s: says drifted" "echo \"\$st\" | grep -q '^drifted'"
out=$(wgk reload wgk 2>&1); rc=$?
show_out "$out"
check "$r: reload puts back p4, removed by hand (exit 0)" "[ $rc = 0 ] && [ \"\$(peer_order)\" = 'b p3 p4' ]"
status_is "$s: in sync after that reload" 0
$IP -n a link set wgk mtu 1300
status_is "$s: mtu set to 1300 by hand: drifted" 1
check "$s: a line names the mtu (1300 on the link, 1380 applied)" "echo \"\$st\" | grep -q 'mtu is 1300 on the link, 1380 was applied'"
status_is "$s: --json on the drifted interface" 1 --json
check "$s: --json says \"state\": \"drifted\"" "echo \"\$st\" | grep -q '\"state\": \"drifted\"'"
check "$s: --json lists the mtu in drift" "echo \"\$st\" | grep -q 'mtu is 1300 on the link, 1380 was applied'"
out=$(wgk reload wgk 2>&1); rc=$?
show_out "$out"
check "$r: reload puts back mtu 1380 (exit 0)" "[ $rc = 0 ] && $IP -n a link show wgk | grep -q ' mtu 1380 '"
status_is "$s: in sync after that reload" 0
check "$r: b's session survived every reload (same latest handshake)" "[ \"\$(handshake_of \"$PB\")\" = \"$hs_before\" ]"

# 6.4b A listen port that is taken, with a new fwmark in the same reload: the kernel sets the
#      fwmark before it binds the port; the failed reload puts both back.
# (a WireGuard link binds its port only while it is up)
$IP -n a link add wgx type wireguard && in_ns a wg set wgx listen-port 51829 && $IP -n a link set wgx up
sed -i 's/listen_port: 51820,/listen_port: 51829, fwmark: "0x99",/' /etc/wg-exec/wgk.ron
out=$(wgk reload wgk 2>&1); rc=$?
show_out "$out"
check "$r: port 51829 taken by another link: reload exits 1, rolled back" "[ $rc = 1 ] && echo \"\$out\" | grep -q 'failed at step .device set.'"
check "$r: the fwmark the kernel had already set is put back (off), port 51820" "[ \"\$(in_ns a wg show wgk fwmark)\" = off ] && [ \"\$(in_ns a wg show wgk listen-port)\" = 51820 ]"
sed -i 's/listen_port: 51829, fwmark: "0x99",/listen_port: 51820,/' /etc/wg-exec/wgk.ron
$IP -n a link del wgx
status_is "$s: in sync after the failed reload" 0

# 6.5 down after all this: no trace; status then says not up.
out=$(wgk down wgk 2>&1); rc=$?
show_out "$out"
check "$r: ip netns exec a wg-exec down wgk exits 0" "[ $rc = 0 ]"
check "$r: no trace in netns a after up, four reloads and drift" "[ \"\$(snapshot a)\" = \"\$before_a\" ]"
status_is "$s: not up after down" 3
out=$(wgk status wgnever 2>&1); rc=$?
show_out "$out"
check "$s: an interface never up (exit 3)" "[ $rc = 3 ]"
$WGX down wgb

# --- 7. Full tunnels (table: "auto") on the kernel backend, in the shape users write: no
#        namespace option, no backend, `ip netns exec fc wg-exec up wgc --config FILE`, as root
#        and as uid 65534 with ambient capabilities. Client fc and server fs joined by veth (vc,
#        vs); fc's default routes (IPv4 and IPv6) go via fs, which has the endpoint 192.0.2.1 and
#        the "internet" 198.51.100.7 and 2001:db8:100::7 on its loopback, and a kernel WireGuard
#        link wgs (198.18.0.1/24, 2001:db8:1::1/64) set up with ip and wg. fc's rp_filter is
#        strict: the tunnel's UDP replies from 192.0.2.1 pass it only with mark 0xca6c (51820, the
#        table) restored by wg-exec's nftables table and src_valid_mark=1. Descriptions start
#        with "full tunnel kernel".
wg genkey > /test/keys/fc.key; wg genkey > /test/keys/fs.key
PFS=$(wg pubkey < /test/keys/fs.key); PFC=$(wg pubkey < /test/keys/fc.key)
for ns in fc fs; do $IP netns add $ns; $IP -n $ns link set lo up; done
$IP -n fc link add vc type veth peer name vs netns fs
$IP -n fc address add 203.0.113.1/24 dev vc; $IP -n fc address add 2001:db8:ffff::1/64 dev vc nodad
$IP -n fs address add 203.0.113.2/24 dev vs; $IP -n fs address add 2001:db8:ffff::2/64 dev vs nodad
$IP -n fc link set vc up; $IP -n fs link set vs up
$IP -n fc -4 route add default via 203.0.113.2 dev vc
$IP -n fc -6 route add default via 2001:db8:ffff::2 dev vc
$IP -n fs address add 192.0.2.1/32 dev lo; $IP -n fs address add 198.51.100.7/32 dev lo
$IP -n fs address add 2001:db8:100::7/128 dev lo nodad
$IP -n fs link add wgs type wireguard
in_ns fs wg set wgs private-key /test/keys/fs.key listen-port 51820 \
    peer "$PFC" allowed-ips 198.18.0.2/32,2001:db8:1::2/128
$IP -n fs address add 198.18.0.1/24 dev wgs; $IP -n fs address add 2001:db8:1::1/64 dev wgs nodad
$IP -n fs link set wgs up
in_ns fc sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter; echo 1 > /proc/sys/net/ipv4/conf/vc/rp_filter'
check "full tunnel kernel: setup: fc reaches 198.51.100.7 and 2001:db8:100::7 via the veth (no tunnel yet)" \
    "in_ns fc ping -c 1 -W 2 198.51.100.7 >/dev/null && in_ns fc ping -c 1 -W 2 2001:db8:100::7 >/dev/null"
check "full tunnel kernel: setup: strict rp_filter in fc (all and vc)" \
    "[ \"\$(in_ns fc cat /proc/sys/net/ipv4/conf/all/rp_filter)\" = 1 ] && [ \"\$(in_ns fc cat /proc/sys/net/ipv4/conf/vc/rp_filter)\" = 1 ]"
mkdir -m 755 /test/ft
cp /test/keys/fc.key /test/ft/fc.key
ft_conf() { # allowed IPs of the server's peer
    cat > /test/ft/wgc.ron <<RON
Interface(
    ips: ["198.18.0.2/24", "2001:db8:1::2/64"],
    private_key_file: "/test/ft/fc.key",
    table: "auto",
    peers: [Peer(public_key: "$PFS", allowed_ips: [$1], endpoint: "192.0.2.1:51820")],
)
RON
}
ft_snapshot() { # fc's links, addresses, routes, rules, nftables ruleset and src_valid_mark
    snapshot fc
    echo "== nft list ruleset"; in_ns fc nft list ruleset
    echo "== src_valid_mark"; in_ns fc cat /proc/sys/net/ipv4/conf/all/src_valid_mark
}
ft_wgx() { # root|nobody, wg-exec arguments: wg-exec inside netns fc
    who=$1; shift
    if [ $who = root ]; then in_ns fc $WGX "$@"
    else in_ns fc $NOBODY env WG_EXEC_STATE_DIR=$nr_state $WGX "$@"; fi
}
same_or_diff() { # before, after: equal, or the difference shown
    [ "$1" = "$2" ] && return 0
    echo "$1" > /tmp/ft-before; echo "$2" > /tmp/ft-after
    diff /tmp/ft-before /tmp/ft-after | sed 's/^/    /'
    return 1
}
ft_transfer() { in_ns fc wg show wgc transfer | awk -v k="$PFS" '$1 == k { print $2 " " $3 }'; }
grew() { # transfer before, transfer after: both counters grew
    set -- $1 $2
    [ -n "${4:-}" ] && [ "$3" -gt "$1" ] && [ "$4" -gt "$2" ]
}
full_tunnel() { # root|nobody, v4v6|v4
    who=$1; fam=$2
    m="full tunnel kernel $fam as $who"
    [ $who = nobody ] && m="full tunnel kernel $fam as uid 65534"
    if [ $fam = v4v6 ]; then ft_conf '"0.0.0.0/0", "::/0"'; else ft_conf '"0.0.0.0/0"'; fi
    check "$m: the configuration has no namespace option and no backend field, table auto" \
        "! grep -qE 'namespace|backend' /test/ft/wgc.ron && grep -q 'table: \"auto\"' /test/ft/wgc.ron"
    before=$(ft_snapshot)
    check "$m: before up: no rules at 31820/31821, src_valid_mark 0, no nftables table" \
        "! $IP -n fc rule show | grep -q '^3182[01]:' && [ \"\$(in_ns fc cat /proc/sys/net/ipv4/conf/all/src_valid_mark)\" = 0 ] && [ -z \"\$(in_ns fc nft list ruleset)\" ]"
    out=$(ft_wgx $who -v up wgc --config /test/ft/wgc.ron 2>&1); rc=$?
    echo "$out" | sed 's/^/    /'
    check "$m: ip netns exec fc wg-exec up wgc --config FILE exits 0" "[ $rc = 0 ]"
    check "$m: wgc is a kernel wireguard link in netns fc (backend Auto)" "$IP -n fc -d link show wgc | grep -q '^ *wireguard'"
    if [ $who = nobody ]; then
        check "$m: its journal is in WG_EXEC_STATE_DIR, owned by uid 65534" "[ \"\$(stat -c %u $nr_state/wgc.ron 2>/dev/null)\" = 65534 ]"
    fi
    for v in 4 6; do
        rules=$($IP -n fc -$v rule show)
        echo "$rules" | sed "s/^/    ip -$v rule: /"
        check "$m: ip -$v rule: 31820 lookup main suppress_prefixlength 0" "echo \"\$rules\" | grep -q '^31820:[[:space:]]*from all lookup main suppress_prefixlength 0'"
        check "$m: ip -$v rule: 31821 not fwmark 0xca6c lookup 51820" "echo \"\$rules\" | grep -q '^31821:[[:space:]]*not from all fwmark 0xca6c lookup 51820'"
    done
    check "$m: the device's fwmark is 0xca6c (51820)" "[ \"\$(in_ns fc wg show wgc fwmark)\" = 0xca6c ]"
    t4=$($IP -n fc -4 route show table 51820); t6=$($IP -n fc -6 route show table 51820)
    echo "$t4" | sed 's/^/    table 51820 v4: /'; echo "$t6" | sed 's/^/    table 51820 v6: /'
    check "$m: table 51820 (v4): default dev wgc" "echo \"\$t4\" | grep -q '^default dev wgc'"
    get=$($IP -n fc route get 198.51.100.7); echo "    $get"
    check "$m: ip route get 198.51.100.7: dev wgc" "echo \"\$get\" | grep -q ' dev wgc '"
    get=$($IP -n fc route get 192.0.2.1 mark 0xca6c); echo "    $get"
    check "$m: ip route get 192.0.2.1 mark 0xca6c: via 203.0.113.2 dev vc (the endpoint outside the tunnel)" "echo \"\$get\" | grep -q 'via 203.0.113.2 dev vc '"
    get=$($IP -n fc route get 192.0.2.1); echo "    $get"
    check "$m: ip route get 192.0.2.1 (no mark): dev wgc" "echo \"\$get\" | grep -q ' dev wgc '"
    check "$m: automatic mtu 1420 (veth 1500 - 80)" "$IP -n fc link show wgc | grep -q ' mtu 1420 '"
    ruleset=$(in_ns fc nft list ruleset)
    check "$m: nft list ruleset: table ip wg-exec-wgc" "echo \"\$ruleset\" | grep -q '^table ip wg-exec-wgc {'"
    check "$m: src_valid_mark is 1" "[ \"\$(in_ns fc cat /proc/sys/net/ipv4/conf/all/src_valid_mark)\" = 1 ]"
    xfer_before=$(ft_transfer)
    check "$m: ping 198.51.100.7 (strict rp_filter)" "ping_until fc 198.51.100.7"
    if [ $fam = v4v6 ]; then
        check "$m: table 51820 (v6): default dev wgc" "echo \"\$t6\" | grep -q '^default dev wgc'"
        get=$($IP -n fc -6 route get 2001:db8:100::7); echo "    $get"
        check "$m: ip -6 route get 2001:db8:100::7: dev wgc" "echo \"\$get\" | grep -q ' dev wgc '"
        check "$m: nft list ruleset: table ip6 wg-exec-wgc" "echo \"\$ruleset\" | grep -q '^table ip6 wg-exec-wgc {'"
        check "$m: ping 2001:db8:100::7" "ping_until fc 2001:db8:100::7"
    else
        check "$m: table 51820 (v6): unreachable default (IPv6 leak protection)" "echo \"\$t6\" | grep -q '^unreachable default'"
        check "$m: nft list ruleset: no ip6 table (IPv4-only tunnel)" "! echo \"\$ruleset\" | grep -q '^table ip6 '"
        check "$m: ping -6 2001:db8:100::7 fails (no leak around the tunnel)" "! in_ns fc ping -6 -c 1 -W 2 2001:db8:100::7 >/dev/null 2>&1"
    fi
    if [ $who = root ] && [ $fam = v4v6 ]; then
        # The control: the strict rp_filter is in force, and src_valid_mark (with the mark that
        # wg-exec's nftables table restores) is what lets the tunnel's UDP replies through.
        in_ns fc sh -c 'echo 0 > /proc/sys/net/ipv4/conf/all/src_valid_mark'
        check "$m: control: with src_valid_mark 0 set by hand, strict rp_filter drops the tunnel's replies" \
            "! in_ns fc ping -c 2 -W 2 198.51.100.7 >/dev/null 2>&1"
        in_ns fc sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/src_valid_mark'
        check "$m: control: src_valid_mark 1 again: ping 198.51.100.7" "ping_until fc 198.51.100.7"
    fi
    xfer_after=$(ft_transfer)
    echo "    transfer (rx tx): $xfer_before -> $xfer_after"
    check "$m: through the tunnel: wgc's transfer counters grew both ways" "grew '$xfer_before' '$xfer_after'"
    out=$(ft_wgx $who down wgc --config /test/ft/wgc.ron 2>&1); rc=$?
    [ -n "$out" ] && echo "$out" | sed 's/^/    /'
    check "$m: ip netns exec fc wg-exec down wgc exits 0" "[ $rc = 0 ]"
    check "$m: no trace in fc (links, addresses, routes and rules v4+v6, nft ruleset, src_valid_mark)" "same_or_diff \"\$before\" \"\$(ft_snapshot)\""
    if [ $who = nobody ]; then
        check "$m: its journal is gone from WG_EXEC_STATE_DIR" "[ ! -e $nr_state/wgc.ron ]"
    fi
}
full_tunnel root v4v6
full_tunnel root v4
# The non-root cell, run as the plain non-root matrix cell runs wg-exec (setpriv: uid 65534,
# ambient CAP_NET_ADMIN and CAP_SYS_MODULE); its configuration and key are its own.
chown 65534:65534 /test/ft/wgc.ron /test/ft/fc.key
full_tunnel nobody v4v6

echo "$passed passed, $failed failed"
[ $failed = 0 ]
