# Sourced by tests/systemd/guest.sh (uses its helpers). The NixOS module's unit names, under
# systemd as PID 1: wireguard-wg0.service and wireguard-wg0.target as nix/render.nix defines them
# (scripts/vm-systemd/run renders them with tests/nix/unit-files.nix into /vmtest/module-units,
# written as NixOS writes unit files, with ExecStart=/usr/sbin/wg-exec up wg0), and a unit as the
# module's users write it: Requires= and After=wireguard-wg0.service. Before the module kept
# these names, that unit's dependency named a unit that did not exist.
# Whether UNIT is active and became active after the monotonic time T (microseconds).
entered_after() { active "$1" && [ "$(prop "$1" ActiveEnterTimestampMonotonic)" -gt "$2" ]; }

case_module_units() {
    local L="module units" M=wireguard-wg0 C=vmtest-after-wg t_if s_c t_c t_tg hs0 out
    CUR=$(cursor)
    install -m 0644 /vmtest/module-units/* /etc/systemd/system/
    cat > /etc/systemd/system/$C.service <<EOF
[Unit]
Description=vmtest: a unit ordered after the interface, as the module's users write it
Requires=$M.service
After=$M.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'wg show wg0 peers > /run/$C.peers; ip -o route show dev wg0 > /run/$C.routes'
EOF
    # Info lines in the journal, as for wg-exec@.service (guest.sh's 50-vmtest-log.conf).
    install -D -m 0644 "$DROPINS/50-vmtest-log.conf" /etc/systemd/system/$M.service.d/50-vmtest-log.conf
    systemctl daemon-reload
    echo "    rendered: $(ls /vmtest/module-units | tr '\n' ' ')"
    check "$L: systemctl cat $M.service runs wg-exec (ExecStart=/usr/sbin/wg-exec up wg0)" \
        sh -c "systemctl cat $M.service | grep -qx 'ExecStart=/usr/sbin/wg-exec up wg0'"
    BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2="" HOOKS="" PEER_EXTRA="" write_config
    rm -f /run/$C.*
    check "$L: systemctl start $C (Requires= and After=$M.service)" systemctl start $C
    check "$L: $M.service is active (pulled in by Requires=)" active $M
    active $M || journalctl -q --no-pager -u $M -n 12 | sed 's/^/    /'
    t_if=$(prop $M ActiveEnterTimestampMonotonic)
    s_c=$(prop $C ExecMainStartTimestampMonotonic)
    check "$L: $C started after $M was up (ExecMainStart $s_c >= ActiveEnter $t_if)" \
        test "${t_if:-0}" -gt 0 -a "${s_c:-0}" -ge "${t_if:-0}"
    check "$L: $C saw both peers on wg0" eq "$(wc -l < /run/$C.peers)" 2
    check "$L: $C saw the peer's route through wg0" grep -q '^192.0.2.2 ' /run/$C.routes
    check "$L: ping 192.0.2.2 through the tunnel" ping_peer
    check "$L: journalctl -u $M shows wg-exec's lines" wait_for 10 jq_unit $M "" "wg0 is up"
    # Reload in place: peer2 gains a keepalive, the peer keeps its session.
    check "$L: the peer's session is settled (latest handshake over 6 s old)" wait_for 15 settled "$PUB_PEER"
    hs0=$(peer_field latest-handshakes "$PUB_PEER")
    BACKEND=Auto ENDPOINT=203.0.113.2:51820 KEEPALIVE2=17 HOOKS="" PEER_EXTRA="" write_config
    check "$L: systemctl reload $M" systemctl reload $M
    check "$L: peer2's keepalive is 17 after the reload" eq "$(peer_field persistent-keepalive "$PUB_PEER2")" 17
    check "$L: the peer's handshake is unchanged by the reload" eq "$(peer_field latest-handshakes "$PUB_PEER")" "$hs0"
    check "$L: journalctl -u $M shows the reload" wait_for 10 jq_unit $M "" "wg0 reloaded"
    # systemctl restart wireguard-wg0, as scripts around the module run it: the unit that
    # requires it is restarted with it.
    t_c=$(prop $C ActiveEnterTimestampMonotonic)
    check "$L: systemctl restart $M" systemctl restart $M
    check "$L: $M is active after the restart" active $M
    # systemctl waits for the job it asked for only; $C's restart is another job of the same
    # transaction, which runs once $M is up (After=), so it may still be running here.
    check "$L: $C was restarted with it (Requires=)" wait_for 10 entered_after $C "${t_c:-0}"
    check "$L: ping after the restart" ping_peer
    check "$L: systemctl stop $M" systemctl stop $M
    check "$L: $M is inactive" state_is $M inactive
    check "$L: $C stopped with it (Requires=)" wait_for 10 state_is $C inactive
    no_trace "$L: after stop"
    # The target: starts the interface and is ordered after it; stopping it stops the interface.
    check "$L: systemctl start $M.target" systemctl start $M.target
    check "$L: $M.target started $M.service" active $M
    t_if=$(prop $M ActiveEnterTimestampMonotonic)
    t_tg=$(prop $M.target ActiveEnterTimestampMonotonic)
    check "$L: $M.target became active after $M.service ($t_tg >= $t_if)" \
        test "${t_if:-0}" -gt 0 -a "${t_tg:-0}" -ge "${t_if:-0}"
    check "$L: ping with the target started" ping_peer
    # systemd reloads no target (reload is for units with ExecReload=); said, not checked.
    out=$(systemctl reload $M.target 2>&1)
    echo "    systemctl reload $M.target: exit $?${out:+: $out}"
    check "$L: systemctl stop $M.target" systemctl stop $M.target
    check "$L: $M.service stopped with its target (PartOf=)" wait_for 10 state_is $M inactive
    no_trace "$L: after stopping the target"
    rm -rf /etc/systemd/system/$C.service /etc/systemd/system/$M.service.d /run/$C.*
    for f in /vmtest/module-units/*; do rm -f "/etc/systemd/system/$(basename "$f")"; done
    systemctl daemon-reload
    systemctl reset-failed $M $C $M.target 2>/dev/null
}
