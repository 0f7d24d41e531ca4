#!/bin/bash
# The systemd VM test (scripts/vm-test --systemd), run as root by vmtest.service in a Debian 12
# guest whose PID 1 is systemd. wg-exec arrives as its Debian package (/vmtest/wg-exec.deb) and
# runs under the units the package installs, as shipped. One line per check ("ok   - ..." or
# "FAIL - ..."); the counts are kept on the disk across the guest's reboots and the last boot
# prints "N passed, M failed". Exit 0: all passed; 1: something failed; 10: reboot and call me
# again (the state in /var/lib/vmtest says where to go on).
#
# Boots (full mode; quick mode is boot 1 without the non-root round, then boot 2):
#   1. install the package; as root, then again with the package's non-root drop-in: the kernel
#      backend (start, ping, journal and its priorities, reload keeps the other peer's session,
#      stop leaves no trace), the userspace backend (the same, wireguard-go in the unit's cgroup,
#      none left after stop), a start killed while a hook sleeps (before and after the link
#      exists: the next start rolls back and comes up), a failing start, a full tunnel (table
#      "auto": rules, firewall, src_valid_mark under the unit's sandbox; DNS for every query as
#      root; stop puts it all back). Then DNS (resolved, resolvconf, neither). Then the NixOS
#      module's wireguard-wg0.service and .target (tests/systemd/module-units.sh). Then enable wg-exec@wg0
#      and wg-exec-refresh@wg0 with a peer known by a name only a DNS server started late in
#      boot resolves, and reboot.
#   2. as root: up at boot before network.target, not held up by DNS; the refresh unit (after
#      network-online.target) fills the endpoint in within one period of DNS answering, follows a DNS change, goes on through a reload of wg-exec@wg0 (and
#      follows the next change), and stops with the interface's unit. Reboot with the non-root
#      drop-in.
#   3. the same as 2 without root (the drop-in is for wg-exec@.service only, as the README
#      says; the refresh unit runs as shipped).
set -u
S=/var/lib/vmtest
K=$S/keys
mkdir -p "$S"
phase=$(cat "$S/phase" 2>/dev/null || echo 1)
mode=$(cat /vmtest/mode 2>/dev/null || echo full)
passed=$(cat "$S/passed" 2>/dev/null || echo 0)
failed=$(cat "$S/failed" 2>/dev/null || echo 0)
U=wg-exec@wg0
R=wg-exec-refresh@wg0
DROPINS=/etc/systemd/system/wg-exec@.service.d
REFRESH_DROPINS=/etc/systemd/system/wg-exec-refresh@.service.d
uptime_s() { cut -d' ' -f1 /proc/uptime; }
save_counts() { echo "$passed" > "$S/passed"; echo "$failed" > "$S/failed"; sync; }

ok() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; echo "$1" >> "$S/failures"; }
check() { # description, command...: passes when the command succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
# Polls a command every 0.2 s for up to SECONDS (TCG is slow and journald reads asynchronously).
wait_for() { # seconds, command...
    local n=$(($1 * 5))
    shift
    while [ $n -gt 0 ]; do
        "$@" && return 0
        sleep 0.2
        n=$((n - 1))
    done
    "$@"
}
not() { ! "$@"; }
# The monotonic time (seconds) of UNIT's first journal line containing TEXT, empty if none.
mono_s() { # unit, text
    journalctl -q --no-pager -b -o short-monotonic -u "$1" | grep -F -- "$2" | head -n 1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'
}
eq() { [ "$1" = "$2" ] || { echo "    expected '$2', got '$1'"; return 1; }; }
prop() { systemctl show -p "$2" --value "$1"; }
active() { [ "$(systemctl is-active "$1")" = active ]; }
state_is() { [ "$(systemctl is-active "$1")" = "$2" ]; }
# Each case looks at the journal since it began ($CUR, for --since). Not --after-cursor:
# journalctl 252 with -u or -p drops the first matching entry after a cursor whose own entry
# does not match.
cursor() { date +@%s.%6N; }
# Whether UNIT's journal (as journalctl -u shows it, since $CUR when set, with priority PRIO
# when not empty) has a message matching PATTERN.
jq_unit() { # unit, priority, pattern
    local args=(-q --no-pager -o cat -u "$1")
    [ -z "${CUR:-}" ] || args+=(--since="$CUR")
    [ -z "$2" ] || args+=(-p "$2")
    journalctl "${args[@]}" | grep -q -- "$3"
}
# The uids that wrote to the unit's stdout/stderr stream (not systemd's own lines about it).
stdout_uids() {
    jlog -o export --output-fields=_UID,_TRANSPORT | awk -v RS= '/(^|\n)_TRANSPORT=stdout(\n|$)/ {
        if (match($0, /(^|\n)_UID=[0-9]+/)) { u = substr($0, RSTART, RLENGTH); sub(/.*=/, "", u); print u } }' |
        sort -u | tr '\n' ' ' | sed 's/ $//'
}
jhas() { wait_for 10 jq_unit "$U" "" "$1"; }
jhas_all() { local p; for p; do jhas "$p" || return 1; done; }
jhas_p() { wait_for 10 jq_unit "$U" "$1" "$2"; }
rjhas() { wait_for 10 jq_unit "$R" "" "$1"; }
jlog() { journalctl -q --no-pager -u "$U" ${CUR:+--since="$CUR"} "$@"; }
ping_peer() { # the peer host's tunnel address, through wg0; the first handshake may need a retry
    local i=0
    while [ $i -lt 15 ]; do
        ping -c 1 -W 1 -I wg0 192.0.2.2 >/dev/null 2>&1 && return 0
        i=$((i + 1))
    done
    return 1
}
settled() { # public key: its latest handshake is over 6 s old, past WireGuard's REKEY_TIMEOUT (5 s),
    # so that the retry of a lost first initiation cannot make a new handshake later (a check
    # that a reload keeps the session would take that for the reload's doing)
    local hs; hs=$(peer_field latest-handshakes "$1")
    [ "${hs:-0}" -gt 0 ] && [ $(($(date +%s) - hs)) -ge 6 ]
}
peer_field() { # wg show field (latest-handshakes, endpoints, persistent-keepalive, transfer), public key
    wg show wg0 "$1" 2>/dev/null | awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print }'
}
endpoint_is() { [ "$(peer_field endpoints "$PUB_PEER")" = "$1" ]; }
in_cgroup() { # unit, process name: a process of that name in the unit's cgroup (or below)
    local cg p pids
    cg=$(prop "$1" ControlGroup)
    [ -n "$cg" ] || return 1
    pids=$(find "/sys/fs/cgroup$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
    for p in $pids; do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && return 0
    done
    return 1
}
has_wg0() { ip link show dev wg0 >/dev/null 2>&1; }
status_in_sync() {
    local out
    out=$(wg-exec status wg0 2>&1) && return 0
    echo "$out" | sed 's/^/    /'
    echo "    what wg sees (root with every capability), and the UAPI socket:"
    wg show wg0 2>&1 | head -n 4 | sed 's/^/      /'
    ls -la /run/wireguard 2>&1 | sed 's/^/      /'
    return 1
}
owners() { # the owners of /var/lib/wg-exec and what is in it, on one line
    stat -c '%U:%G %a %n' /var/lib/wg-exec /var/lib/wg-exec/* 2>/dev/null | sed 's|/var/lib/wg-exec/||' | tr '\n' ';'
}
no_trace() { # label: what a stopped interface must not leave
    check "$1: link wg0 is gone" not has_wg0
    check "$1: no route through wg0" sh -c '! ip -4 route show table all | grep -q "dev wg0"'
    check "$1: /var/lib/wg-exec holds no journal, record or lock" sh -c '
        left=$(ls -A /var/lib/wg-exec 2>/dev/null); [ -z "$left" ] || { echo "    left: $left"; false; }'
    check "$1: no wireguard-go process" not pgrep -x wireguard-go
    check "$1: no UAPI socket /run/wireguard/wg0.sock" test ! -e /run/wireguard/wg0.sock
}
# /etc/wg-exec/wg0.ron: wg0 (192.0.2.1/24, port 51820, key /etc/wg-exec/keys/wg0.key) with
# two peers: "peer" (the peer host; endpoint $ENDPOINT) and "peer2" (no host, keepalive
# $KEEPALIVE2), backend $BACKEND, hooks from $HOOKS (RON fields).
write_config() {
    local ka2="" allowed='"192.0.2.2/32"'
    [ -z "${ALLOWED:-}" ] || allowed=$ALLOWED
    [ -z "${KEEPALIVE2:-}" ] || ka2="persistent_keepalive: $KEEPALIVE2,"
    cat > /etc/wg-exec/wg0.ron.new <<RON
Interface(
    ips: ["192.0.2.1/24"],
    private_key_file: "/etc/wg-exec/keys/wg0.key",
    listen_port: 51820,
    backend: $BACKEND,
    ${HOOKS:-}
    ${DNS:-}
    peers: [
        Peer(name: "peer", public_key: "$PUB_PEER", allowed_ips: [$allowed],
            endpoint: "$ENDPOINT", ${PEER_EXTRA:-}),
        Peer(name: "peer2", public_key: "$PUB_PEER2", allowed_ips: ["192.0.2.3/32"], $ka2),
    ],
)
RON
    # Readable by the group wg-exec (the non-root drop-in's user), as the README says.
    chown root:wg-exec /etc/wg-exec/wg0.ron.new
    chmod 0640 /etc/wg-exec/wg0.ron.new
    mv /etc/wg-exec/wg0.ron.new /etc/wg-exec/wg0.ron
}
as_user() { # label: the drop-in in place (non-root) or not (root)
    # Both drop-ins, as the README says: the refresh unit runs as the same user.
    if [ "$1" = non-root ]; then
        install -D -m 0644 /usr/share/doc/wg-exec/examples/non-root.conf "$DROPINS/non-root.conf"
        install -D -m 0644 /usr/share/doc/wg-exec/examples/non-root-refresh.conf "$REFRESH_DROPINS/non-root.conf"
    else
        rm -f "$DROPINS/non-root.conf" "$REFRESH_DROPINS/non-root.conf"
    fi
    systemctl daemon-reload
}
# Issue 19's cases (children's capabilities, /run/wireguard): in a file of their own.
. /vmtest/guest-children.sh

security_scores() { # label
    local u out
    for u in "$U.service" "$R.service"; do
        out=$(systemd-analyze security --no-pager "$u" 2>&1)
        echo "# $1: systemd-analyze security $u: $(grep -i 'overall exposure' <<< "$out" | sed 's/.*: //')"
        # What costs exposure (the settings marked ✗), once.
        [ "$1" != root ] || grep '✗' <<< "$out" | sed 's/^ *✗ */    ✗ /; s/  */ /g'
    done
}
finish() {
    save_counts
    if [ "$failed" -gt 0 ]; then
        echo "# failed:"
        sed 's/^/#   /' "$S/failures"
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

# --- One interface through its unit: start, ping, journal, reload, stop.
case_interface() { # label (root|non-root), backend (Auto|Userspace)
    local L="$1 $2" kind pid hs0 hs1 rx0 rx1
    CUR=$(cursor)
    BACKEND=$2 ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="" PEER_EXTRA="" write_config
    check "$L: systemctl start $U" systemctl start "$U"
    check "$L: $U is active" active "$U"
    active "$U" || journalctl -q --no-pager -u "$U" -n 12 | sed 's/^/    /'
    kind=$(ip -d -o link show dev wg0 2>/dev/null)
    if [ "$2" = Userspace ]; then
        check "$L: wg0 is a TUN device (userspace)" grep -qw tun <<< "$kind"
        check "$L: wireguard-go runs in the unit's cgroup ($(prop "$U" ControlGroup))" in_cgroup "$U" wireguard-go
        systemctl status --no-pager -n 0 "$U" | sed -n '/CGroup:/,$p' | sed 's/^/    /'
        pid=$(pgrep -x wireguard-go | head -1)
        check "$L: wireguard-go runs as $(test "$1" = root && echo root || echo wg-exec)" \
            eq "$(ps -o user= -p "${pid:-1}" | tr -d ' ')" "$(test "$1" = root && echo root || echo wg-exec)"
    else
        check "$L: wg0 is a kernel WireGuard link" grep -q 'wireguard' <<< "$kind"
        check "$L: wg-exec status says Auto chose the kernel" sh -c 'wg-exec status wg0 --json | grep -q "\"backend\": *\"Auto (kernel)\""'
    fi
    check "$L: /var/lib/wg-exec is owned by the unit's user" \
        eq "$(stat -c %U /var/lib/wg-exec)" "$(test "$1" = root && echo root || echo wg-exec)"
    check "$L: ping 192.0.2.2 (the peer host) through the tunnel" ping_peer
    check "$L: the peer's session is settled (latest handshake over 6 s old)" wait_for 15 settled "$PUB_PEER"
    hs0=$(peer_field latest-handshakes "$PUB_PEER")
    check "$L: a handshake with the peer" test "${hs0:-0}" -gt 0
    # The journal: wg-exec's own lines, filed by priority (<N> prefixes on a journal stderr).
    check "$L: journalctl -u $U shows wg-exec's lines (info: wg0 is up)" jhas "wg0 is up"
    check "$L: journalctl -u $U shows the key file warning" jhas "key file /etc/wg-exec/keys/wg0.key is readable by others"
    check "$L: journalctl -p warning -u $U shows the warning" jhas_p warning 'wg-exec: warning: .*readable by others'
    check "$L: journalctl -p warning -u $U leaves the info lines out" not jq_unit "$U" warning "wg0 is up"
    check "$L: the warning has PRIORITY=4" jq_unit "$U" warning..warning 'readable by others'
    check "$L: the info line has PRIORITY=6" jq_unit "$U" info..info 'wg0 is up'
    check "$L: no <N> prefix is left in the messages" not jq_unit "$U" "" '^<[0-7]>'
    if [ "$1" = non-root ]; then
        check "$L: wg-exec's journal lines come from uid wg-exec ($(id -u wg-exec))" \
            eq "$(stdout_uids)" "$(id -u wg-exec)"
    fi
    # Reload: peer2 gains a keepalive; the peer's session (handshake, counters) is untouched.
    rx0=$(peer_field transfer "$PUB_PEER" | awk '{ print $1 }')
    BACKEND=$2 ENDPOINT=203.0.113.2:51820 KEEPALIVE2=17 HOOKS="" PEER_EXTRA="" write_config
    check "$L: systemctl reload $U (peer2's keepalive: 17)" systemctl reload "$U"
    check "$L: $U is active after reload" active "$U"
    check "$L: peer2's keepalive is 17" eq "$(peer_field persistent-keepalive "$PUB_PEER2")" 17
    hs1=$(peer_field latest-handshakes "$PUB_PEER")
    check "$L: the peer's latest handshake is unchanged by the reload ($hs0)" eq "$hs1" "$hs0"
    rx1=$(peer_field transfer "$PUB_PEER" | awk '{ print $1 }')
    check "$L: the peer's counters were kept (rx $rx0 -> ${rx1:-none})" test "${rx1:-0}" -ge "${rx0:-1}"
    check "$L: journalctl -u $U shows the reload" jhas "wg0 reloaded"
    check "$L: wg-exec status (run by root): in sync after the reload" status_in_sync
    check "$L: ping still works after the reload" ping_peer
    check "$L: systemctl stop $U" systemctl stop "$U"
    check "$L: $U is inactive" state_is "$U" inactive
    no_trace "$L: after stop"
}

# --- A start killed while a hook sleeps, and a start that fails.
starting_with_sleep() { [ "$(systemctl is-active "$U")" = activating ] && in_cgroup "$U" sleep; }
result_is() { [ "$(prop "$U" Result)" = "$1" ]; }
case_kill() { # label, backend
    local L="$1 $2" where
    for where in pre_setup post_setup; do
        CUR=$(cursor)
        BACKEND=$2 ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="$where: \"sleep 30\"," PEER_EXTRA="" write_config
        systemctl start --no-block "$U"
        check "$L: killed in $where: the start is under way (activating, the hook's sleep in the cgroup)" \
            wait_for 30 starting_with_sleep
        if [ $where = post_setup ]; then
            check "$L: killed in $where: wg0 exists before the kill" has_wg0
        fi
        check "$L: killed in $where: systemctl kill -s KILL $U" systemctl kill -s KILL "$U"
        check "$L: killed in $where: the unit failed (Result=signal)" wait_for 20 result_is signal
        # Result= is set when the main process's death is handled; the hook's sleep, killed by
        # the same signal, may still be leaving the cgroup then.
        check "$L: killed in $where: no wg-exec or sleep left in the cgroup" wait_for 10 not in_cgroup "$U" sleep
        if [ $where = post_setup ]; then
            check "$L: killed in $where: the journal /var/lib/wg-exec/wg0.ron survived" test -e /var/lib/wg-exec/wg0.ron
            if [ "$2" = Userspace ]; then
                # The kill reached wireguard-go too, and its TUN device went with it.
                check "$L: killed in $where: wireguard-go was killed with the unit, wg0 with it" \
                    wait_for 10 not has_wg0
            else
                check "$L: killed in $where: the killed start left wg0 behind" has_wg0
            fi
        else
            check "$L: killed in $where: nothing was created yet (no wg0)" not has_wg0
        fi
        systemctl reset-failed "$U"
        BACKEND=$2 ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="" PEER_EXTRA="" write_config
        check "$L: killed in $where: systemctl start again" systemctl start "$U"
        check "$L: killed in $where: active" active "$U"
        if [ $where = post_setup ]; then
            check "$L: killed in $where: the start rolled the killed one back (journal)" jhas "did not finish; rolling it back first"
            check "$L: killed in $where: ... and says what it undid" jhas "rolled back the unfinished transaction"
        fi
        check "$L: killed in $where: ping through the tunnel" ping_peer
        check "$L: killed in $where: systemctl stop" systemctl stop "$U"
        no_trace "$L: killed in $where: after stop"
    done
    CUR=$(cursor)
    BACKEND=$2 ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS='post_setup: "exit 1",' PEER_EXTRA="" write_config
    check "$L: a start whose post_setup fails fails" not systemctl start "$U"
    check "$L: failing start: the unit is failed" state_is "$U" failed
    check "$L: failing start: the journal says which step failed and what was rolled back" \
        jhas_all "failed at step 'post_setup'" "rolled back"
    jlog -o cat -p err | sed 's/^/    /'
    no_trace "$L: failing start"
    systemctl reset-failed "$U"
}

# --- Boot with the units enabled and DNS late (boots 2 and 3).
case_boot() { # label
    local L=$1 t_up t_start t_net t_dns dur
    CUR=""
    check "$L: $U is enabled" eq "$(systemctl is-enabled "$U")" enabled
    check "$L: $R is enabled (wanted by $U)" eq "$(systemctl is-enabled "$R")" enabled
    check "$L: $U came up at boot" active "$U"
    t_start=$(prop "$U" InactiveExitTimestampMonotonic)
    t_up=$(prop "$U" ActiveEnterTimestampMonotonic)
    t_net=$(prop network.target ActiveEnterTimestampMonotonic)
    t_dns=$(prop vmtest-dns.service ExecMainStartTimestampMonotonic)
    dur=$(((t_up - t_start) / 1000))
    echo "    $U: started at $((t_start / 1000)) ms, active at $((t_up / 1000)) ms ($dur ms);" \
        "network.target at $((t_net / 1000)) ms; the DNS server started at $((t_dns / 1000)) ms"
    systemd-analyze critical-chain --no-pager "$U.service" 2>&1 | sed 's/^/    /'
    check "$L: $U was up before network.target" test "$t_up" -gt 0 -a "$t_net" -gt 0 -a "$t_up" -le "$t_net"
    check "$L: $U was up before the DNS server started" test "$t_up" -lt "$t_dns"
    check "$L: the name did not hold the boot up: $U took ${dur} ms (< 20 s)" test "$dur" -lt 20000
    check "$L: journal: the endpoint did not resolve, the peer is configured without it" \
        jhas_p warning "peer.vmtest.test:51820 did not resolve.*the peer keeps the endpoint it has"
    if [ "$L" = "non-root boot" ]; then
        check "$L: the up at boot ran as uid wg-exec ($(id -u wg-exec))" eq "$(stdout_uids)" "$(id -u wg-exec)"
    fi
    check "$L: $R is active" wait_for 20 active "$R"
    check "$L: $R fills the endpoint in once the name resolves: 203.0.113.2:51820" wait_for 60 endpoint_is 203.0.113.2:51820
    check "$L: journalctl -u $R shows the change" rjhas "endpoint none -> 203.0.113.2:51820"
    # Waiting for the network: the interface's unit does not wait for network-online.target
    # (above: up before network.target, not held up by the name); the refresh unit is ordered
    # after it, and fills the endpoint in within one refresh period (2 s; 1 s more for the pass
    # itself under emulation) of the DNS server answering, which it does only after
    # network-online.target (vmtest-dns.service).
    t_answer=$(mono_s vmtest-dns.service "started, version")
    t_fill=$(mono_s "$R" "endpoint none -> 203.0.113.2:51820")
    gap=$(awk -v a="$t_answer" -v b="$t_fill" 'BEGIN { if (a == "" || b == "") print "none"; else printf "%d", (b - a) * 1000 }')
    echo "    the DNS server answered at ${t_answer:-?} s, the refresh filled the endpoint in at ${t_fill:-?} s"
    check "$L: $R filled the endpoint in within one refresh period of DNS answering (${gap} ms <= 3000)" \
        test "$gap" != none -a "${gap#-}" = "$gap" -a "${gap/none/99999}" -le 3000
    check "$L: $R is ordered after network-online.target" sh -c "systemctl show -p After --value $R | grep -qw network-online.target"
    check "$L: ping through the tunnel" ping_peer
    # Case 4: the DNS answer changes (dnsmasq re-reads its hosts file on SIGHUP).
    echo "203.0.113.3 peer.vmtest.test" > "$S/dns-hosts"
    check "$L: systemctl reload vmtest-dns (SIGHUP)" systemctl reload vmtest-dns
    check "$L: the name now resolves to 203.0.113.3" wait_for 10 sh -c 'getent ahostsv4 peer.vmtest.test | grep -q "^203.0.113.3 "'
    check "$L: $R follows the DNS change: 203.0.113.3:51820" wait_for 60 endpoint_is 203.0.113.3:51820
    check "$L: journalctl -u $R shows the change" rjhas "endpoint 203.0.113.2:51820 -> 203.0.113.3:51820"
    check "$L: ping through the tunnel to the new endpoint" ping_peer
    # A reload while the refresh runs (the two units share /var/lib/wg-exec; without root they
    # run as different users).
    echo "    /var/lib/wg-exec while both run: $(owners)"
    BACKEND=Auto ENDPOINT=peer.vmtest.test:51820 KEEPALIVE2=19 HOOKS="" \
        PEER_EXTRA="dynamic_endpoint_refresh_seconds: 2" write_config
    check "$L: systemctl reload $U while $R runs" systemctl reload "$U"
    check "$L: peer2's keepalive is 19" eq "$(peer_field persistent-keepalive "$PUB_PEER2")" 19
    check "$L: the reload kept the endpoint the refresh set (203.0.113.3:51820)" endpoint_is 203.0.113.3:51820
    sleep 3 # a few passes of the refresh loop (it looks at the journal every second)
    echo "    /var/lib/wg-exec after the reload: $(owners)"
    check "$L: $R still runs 3 s after the reload" active "$R"
    echo "203.0.113.2 peer.vmtest.test" > "$S/dns-hosts"
    systemctl reload vmtest-dns
    check "$L: $R still follows DNS after the reload: back to 203.0.113.2:51820" wait_for 60 endpoint_is 203.0.113.2:51820
    echo "    journalctl -u $R:"
    journalctl -q --no-pager -o cat -u "$R" | sed 's/^/      /'
    check "$L: systemctl stop $U" systemctl stop "$U"
    check "$L: $R stopped with it" wait_for 10 state_is "$R" inactive
    check "$L: no wg-exec refresh process left" not pgrep -f 'wg-exec refresh'
    no_trace "$L: after stop"
}

# --- DNS through systemd-resolved (the unit, as root), then resolvconf (resolved stopped, a
# recording resolvconf on PATH; wg-exec run directly, since the unit's ProtectSystem=strict
# leaves resolvconf nothing to write), then neither.
resolved_shows() { # resolvectl subcommand, pattern...: every pattern in its output for wg0
    local out p
    out=$(resolvectl "$1" wg0 2>&1) || { echo "    resolvectl $1 wg0: $out"; return 1; }
    shift
    for p; do grep -q -- "$p" <<< "$out" || { echo "    resolvectl: no '$p' in: $out"; return 1; }; done
}
no_dns_left() { # label
    check "$1: resolvectl dns wg0 shows no servers (wg0 gone)" \
        sh -c '! resolvectl dns wg0 2>/dev/null | grep -q "192.0.2.53"'
    check "$1: resolvectl status mentions none of the servers or domains" \
        bash -c 'out=$(resolvectl status 2>&1); ! grep -qE "192.0.2.53|2001:db8::53|corp.example|lab.example" <<< "$out" || { echo "$out" | sed "s/^/    /"; false; }'
}
case_dns() {
    local L="root dns" F=/run/fake-resolvconf.log out
    CUR=$(cursor)
    check "$L: systemd-resolved runs" active systemd-resolved.service
    DNS='dns: ["192.0.2.53", "2001:db8::53", "corp.example", "~lab.example"],'
    BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="" PEER_EXTRA="" write_config
    check "$L: up --print shows the resolvectl commands" sh -c 'wg-exec up wg0 --print | grep -qx "resolvectl domain wg0 ~lab.example corp.example"'
    check "$L: systemctl start $U" systemctl start "$U"
    check "$L: resolvectl dns wg0 shows both servers" resolved_shows dns 192.0.2.53 2001:db8::53
    check "$L: resolvectl domain wg0 shows the search and the routing domain" resolved_shows domain corp.example "~lab.example"
    check "$L: resolvectl default-route wg0: no (domains given, not a full tunnel)" resolved_shows default-route ": no"
    resolvectl status wg0 2>&1 | sed 's/^/    /'
    check "$L: journal: set through systemd-resolved" jhas "DNS servers 192.0.2.53, 2001:db8::53 set through systemd-resolved"
    check "$L: wg-exec status: in sync" status_in_sync
    # Settings changed behind wg-exec's back are drift.
    resolvectl revert wg0
    out=$(wg-exec status wg0 2>&1)
    check "$L: after resolvectl revert wg0, wg-exec status exits 1" eq "$?" 1
    check "$L: ... naming the DNS settings" grep -q "the DNS settings of wg0 in systemd-resolved are not what was applied" <<< "$out"
    check "$L: systemctl stop $U" systemctl stop "$U"
    no_trace "$L: after stop"
    no_dns_left "$L: after stop"
    check "$L: journal: reverted through systemd-resolved" jhas "DNS settings reverted through systemd-resolved"
    # wg-exec in another network namespace than the host's: the link's index would name a host
    # link in resolved; refused before anything changes.
    ip netns add vmtest-dnsns
    out=$(ip netns exec vmtest-dnsns wg-exec up wg0 2>&1)
    check "$L: in a network namespace of its own: up exits 2" eq "$?" 2
    check "$L: ... saying why" grep -q "dns: wg-exec runs in a network namespace other than the host's" <<< "$out"
    check "$L: ... and made no link there" not ip -n vmtest-dnsns link show wg0
    ip netns del vmtest-dnsns
    # An up that fails after the DNS step: rolled back, DNS included (post_setup_at: Last runs
    # post_setup after everything, as wg-quick runs PostUp; by default it runs before the peers).
    CUR=$(cursor)
    BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS='post_setup: "exit 1", post_setup_at: Last,' PEER_EXTRA="" write_config
    check "$L: a start whose post_setup fails fails" not systemctl start "$U"
    check "$L: failing start: the DNS step was rolled back" jhas "rolled back: .*dns"
    no_trace "$L: failing start"
    no_dns_left "$L: failing start"
    systemctl reset-failed "$U"
    # resolvconf: resolved stopped, a resolvconf that records its arguments and input.
    check "$L: systemctl stop systemd-resolved" systemctl stop systemd-resolved.service
    printf '#!/bin/sh\necho "args: $*" >> %s\ncat >> %s\n' "$F" "$F" > /usr/local/sbin/resolvconf
    chmod 0755 /usr/local/sbin/resolvconf
    : > "$F"
    BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="" PEER_EXTRA="" write_config
    check "$L: resolvconf: wg-exec up wg0" wg-exec up wg0
    check "$L: resolvconf: called as resolvconf -a wg0 -m 0 (domains given: not exclusive)" grep -qx "args: -a wg0 -m 0" "$F"
    check "$L: resolvconf: given both nameservers and the search line" \
        sh -c "grep -qx 'nameserver 192.0.2.53' $F && grep -qx 'nameserver 2001:db8::53' $F && grep -qx 'search corp.example' $F"
    check "$L: resolvconf: wg-exec down wg0" wg-exec down wg0
    check "$L: resolvconf: down called resolvconf -d wg0 -f" grep -qx "args: -d wg0 -f" "$F"
    sed 's/^/    /' "$F"
    # An up that fails after the DNS step: resolvconf -d as its rollback.
    : > "$F"
    BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS='post_setup: "exit 1", post_setup_at: Last,' PEER_EXTRA="" write_config
    check "$L: resolvconf: an up whose post_setup fails fails" not wg-exec up wg0
    check "$L: resolvconf: its rollback called resolvconf -d wg0 -f" grep -qx "args: -d wg0 -f" "$F"
    no_trace "$L: resolvconf: failing up"
    # Neither: refused before anything changes. resolved masked (a call to it would start it
    # by D-Bus activation) and a PATH without systemd's resolvconf shim (which would call it).
    rm -f /usr/local/sbin/resolvconf
    check "$L: resolvconf is systemd's shim: $(readlink -f "$(command -v resolvconf)")" \
        sh -c 'readlink -f "$(command -v resolvconf)" | grep -q resolvectl'
    check "$L: systemctl mask --runtime systemd-resolved" systemctl mask -q --runtime systemd-resolved.service
    BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="" PEER_EXTRA="" write_config
    out=$(PATH=/nonexistent /usr/sbin/wg-exec up wg0 2>&1)
    check "$L: neither backend: up exits 2" eq "$?" 2
    check "$L: neither backend: the error names dns and what is missing" \
        grep -q "wg0.ron:.*dns: neither systemd-resolved .* nor a resolvconf program" <<< "$out"
    echo "$out" | sed 's/^/    /'
    no_trace "$L: neither backend"
    systemctl unmask -q --runtime systemd-resolved.service
    check "$L: systemctl start systemd-resolved again" systemctl start systemd-resolved.service
    DNS=""
}

# --- A full tunnel through the unit (table "auto", the peer takes 0.0.0.0/0): the fwmark, rules,
# table, firewall and src_valid_mark under the unit's sandbox (ProtectKernelTunables= with
# /proc/sys/net writable), DNS for every query (as root: resolved's polkit lets root only), and
# a stop that puts all of it back byte for byte.
ft_state() { # what a full tunnel touches, as text
    ip -4 rule show; ip -6 rule show
    ip -4 route show table all | grep -v ' proto kernel '; ip -6 route show table all | grep -vE ' proto kernel |^(local|multicast|anycast) |^fe80'
    nft list ruleset
    echo "src_valid_mark $(cat /proc/sys/net/ipv4/conf/all/src_valid_mark)"
}
ft_same() { # the state before: the same now, else the difference
    local now
    now=$(ft_state)
    [ "$1" = "$now" ] && return 0
    diff <(echo "$1") <(echo "$now") | sed 's/^/    /'
    return 1
}
ping_internet() { # 198.51.100.7, on the peer host's loopback: only the tunnel leads there
    local i=0
    while [ $i -lt 15 ]; do
        ping -c 1 -W 1 198.51.100.7 >/dev/null 2>&1 && return 0
        i=$((i + 1))
    done
    return 1
}
case_full_tunnel() { # label (root|non-root)
    local L="$1 full tunnel" before out
    CUR=$(cursor)
    ip -n peer address add 198.51.100.7/32 dev lo 2>/dev/null || true
    echo 0 > /proc/sys/net/ipv4/conf/all/src_valid_mark
    before=$(ft_state)
    DNS=""
    [ "$1" = root ] && DNS='dns: ["198.51.100.53"],'
    ALLOWED='"0.0.0.0/0"' BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" \
        HOOKS='table: "auto",' PEER_EXTRA="" write_config
    check "$L: systemctl start $U" systemctl start "$U"
    check "$L: $U is active" active "$U"
    out=$(ip -4 rule show; ip -6 rule show)
    check "$L: rule 31820: lookup main suppress_prefixlength 0" grep -q '^31820:.*lookup main suppress_prefixlength 0' <<< "$out"
    check "$L: rule 31821: not fwmark 0xca6c lookup 51820" grep -q '^31821:.*not from all fwmark 0xca6c lookup 51820' <<< "$out"
    check "$L: IPv6 rules too (leak protection)" eq "$(ip -6 rule show | grep -c '^3182[01]:')" 2
    check "$L: wg0's fwmark is 0xca6c" eq "$(wg show wg0 fwmark)" 0xca6c
    check "$L: the default route of table 51820 goes through wg0" sh -c 'ip route show table 51820 | grep -q "^default dev wg0"'
    check "$L: IPv6 is unreachable in table 51820" sh -c 'ip -6 route show table 51820 | grep -q "^unreachable default"'
    check "$L: ip route get 198.51.100.7 goes through wg0" sh -c 'ip route get 198.51.100.7 | grep -q "dev wg0"'
    check "$L: ip route get 203.0.113.2 mark 0xca6c (the endpoint) does not" sh -c '! ip route get 203.0.113.2 mark 0xca6c | grep -q "dev wg0"'
    check "$L: ping 198.51.100.7 (behind the peer) through the full tunnel" ping_internet
    check "$L: nft list table ip wg-exec-wg0" nft list table ip wg-exec-wg0
    check "$L: src_valid_mark is 1 (written under ProtectKernelTunables=)" eq "$(cat /proc/sys/net/ipv4/conf/all/src_valid_mark)" 1
    check "$L: the automatic MTU: 1500 - 80" sh -c 'ip link show wg0 | grep -q "mtu 1420"'
    if [ "$1" = root ]; then
        check "$L: resolvectl domain wg0 shows ~. (every query)" resolved_shows domain "~."
        check "$L: resolvectl default-route wg0: yes" resolved_shows default-route ": yes"
        check "$L: resolvectl dns wg0 shows 198.51.100.53" resolved_shows dns 198.51.100.53
    fi
    check "$L: wg-exec status: in sync" status_in_sync
    check "$L: systemctl reload $U (unchanged) keeps the full tunnel" systemctl reload "$U"
    check "$L: the fwmark is still 0xca6c after the reload" eq "$(wg show wg0 fwmark)" 0xca6c
    check "$L: systemctl stop $U" systemctl stop "$U"
    no_trace "$L: after stop"
    check "$L: rules, routes, nftables and src_valid_mark are as before" ft_same "$before"
    [ "$1" = root ] && no_dns_left "$L: after stop"
    DNS=""
}

# The NixOS module's units: a block of its own.
. /vmtest/module-units.sh

echo "# boot $(cat "$S/boots" 2>/dev/null), phase $phase ($mode mode) at $(uptime_s) s"
case $phase in
1)
    : > "$S/failures"
    check "PID 1 is systemd" eq "$(cat /proc/1/comm)" systemd
    check "dpkg -i wg-exec.deb" sh -c 'dpkg -i /vmtest/wg-exec.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; false; }'
    [ -x /usr/sbin/wg-exec ] || finish
    check "wg-exec --version runs" sh -c 'wg-exec --version | sed "s/^/    /"'
    check "the package made the user wg-exec" eval "getent passwd wg-exec >/dev/null"
    check "/etc/wg-exec is root:wg-exec 0750" eq "$(stat -c '%U:%G %a' /etc/wg-exec)" "root:wg-exec 750"
    check "systemd knows wg-exec@.service and wg-exec-refresh@.service" \
        sh -c 'systemctl cat wg-exec@wg0.service wg-exec-refresh@wg0.service >/dev/null'
    check "the underlay is up (vmtest-underlay.service)" active vmtest-underlay.service
    PUB_PEER=$(cat "$K/peer.pub")
    PUB_PEER2=$(cat "$K/peer2.pub")
    install -d -m 0750 -o root -g wg-exec /etc/wg-exec/keys
    # Group-readable for the non-root drop-in: wg-exec warns about it, which the journal
    # checks use.
    # Readable by others too (0644): the warning that the journal check looks for.
    install -m 0644 -o root -g wg-exec "$K/wg0.key" /etc/wg-exec/keys/wg0.key
    # Info lines in the journal too (otherwise wg-exec prints only warnings and errors).
    mkdir -p "$DROPINS"
    printf '[Service]\nEnvironment=RUST_LOG=info\n' > "$DROPINS/50-vmtest-log.conf"
    users="root non-root"
    [ "$mode" = quick ] && users=root
    for user in $users; do
        as_user "$user"
        echo "# $user: $U with User=$(prop "$U" User | sed 's/^$/root/')"
        case_interface "$user" Auto
        case_interface "$user" Userspace
        case_kill "$user" Auto
        case_kill "$user" Userspace
        case_full_tunnel "$user"
        case_children "$user"
        security_scores "$user"
    done
    as_user root
    case_dns
    # The NixOS module's unit names (tests/systemd/module-units.sh).
    case_module_units
    # For the next boot: the units enabled, the peer known by name, the name unknown until
    # the DNS server starts (after network-online.target).
    as_user root
    echo "203.0.113.2 peer.vmtest.test" > "$S/dns-hosts"
    chmod 0644 "$S/dns-hosts"
    BACKEND=Auto ENDPOINT=peer.vmtest.test:51820 KEEPALIVE2="" HOOKS="" \
        PEER_EXTRA="dynamic_endpoint_refresh_seconds: 2" write_config
    check "systemctl enable $U $R vmtest-dns" systemctl enable -q "$U" "$R" vmtest-dns.service
    echo 2 > "$S/phase"
    save_counts
    exit 10
    ;;
2 | 3)
    PUB_PEER=$(cat "$K/peer.pub")
    PUB_PEER2=$(cat "$K/peer2.pub")
    user=root
    [ "$phase" = 3 ] && user=non-root
    echo "# $user: $U with User=$(prop "$U" User | sed 's/^$/root/')"
    case_boot "$user boot"
    if [ "$phase" = 2 ] && [ "$mode" != quick ]; then
        echo "203.0.113.2 peer.vmtest.test" > "$S/dns-hosts"
        as_user non-root
        echo 3 > "$S/phase"
        save_counts
        exit 10
    fi
    ;;
esac
finish
