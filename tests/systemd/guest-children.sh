# Sourced by guest.sh (issue 19): what the unit's children hold and what the non-root unit may
# reach under /run/wireguard.
#   - /run/wireguard is every WireGuard tool's: a root-run wireguard-go of another interface
#     ("wgother", in a namespace of its own) keeps its socket, owner and mode across the
#     unit's start and stop, and the unit's user cannot talk to it; wg(8) run by root still
#     finds the unit's own socket.
#   - the userspace daemon the unit starts holds CAP_NET_ADMIN and nothing else (effective,
#     permitted, ambient; as root its bounding set too, which root would otherwise get back
#     whole at exec).

# The Cap* field of /proc/PID/status.
cap_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

case_children() { # label (root|non-root)
    local L="$1 children" before after pid sets f
    mkdir -p /run/wireguard
    ip netns add vmother
    ip netns exec vmother wireguard-go wgother >/dev/null 2>&1
    check "$L: another interface's root-run wireguard-go serves /run/wireguard/wgother.sock" \
        wait_for 10 test -S /run/wireguard/wgother.sock
    before=$(stat -c '%n %U:%G %a' /run/wireguard /run/wireguard/wgother.sock | tr '\n' ' ')
    BACKEND=Userspace ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="" PEER_EXTRA="" write_config
    check "$L: systemctl start $U (Userspace)" systemctl start "$U"
    after=$(stat -c '%n %U:%G %a' /run/wireguard /run/wireguard/wgother.sock | tr '\n' ' ')
    check "$L: /run/wireguard and wgother.sock are as before the start ($before)" eq "$after" "$before"
    check "$L: the user wg-exec cannot talk to wgother.sock" \
        not runuser -u wg-exec -- wg show wgother
    check "$L: wg show wg0 (root, wg(8)) finds the unit's socket" wg show wg0 public-key
    sets="CapEff CapPrm CapAmb"
    [ "$1" = root ] && sets="$sets CapBnd"
    for pid in $(pgrep -f -x 'wireguard-go wg0'); do
        for f in $sets; do
            check "$L: wireguard-go (pid $pid) $f is CAP_NET_ADMIN alone" \
                eq "$(cap_field "$pid" "$f")" 0000000000001000
        done
    done
    check "$L: wireguard-go serves wg0" pgrep -f -x 'wireguard-go wg0'
    check "$L: systemctl stop $U" systemctl stop "$U"
    after=$(stat -c '%n %U:%G %a' /run/wireguard /run/wireguard/wgother.sock | tr '\n' ' ')
    check "$L: /run/wireguard and wgother.sock are as before after the stop" eq "$after" "$before"
    check "$L: nothing of wg0 left in /run/wireguard" test ! -e /run/wireguard/wg0.sock -a ! -L /run/wireguard/wg0.sock
    rm -f /run/wireguard/wgother.sock
    # wireguard-go ends when it notices its socket is gone; a survivor would be mistaken for
    # the next case's daemon.
    check "$L: wireguard-go wgother ended when its socket was removed" wait_for 10 not pgrep -f -x 'wireguard-go wgother'
    ip netns del vmother
}
