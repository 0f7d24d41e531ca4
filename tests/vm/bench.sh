#!/bin/sh
# The kernel-backend comparison inside the VM (scripts/vm-test --bench): wg-exec up and down
# against the batched lower bound (ip link add type wireguard + one `wg setconf` + one
# `ip -batch`; down: ip link del), side by side, medians of 3, every run checked.
# Times come from /proc/uptime (10 ms steps; under emulation the runs take far longer).
set -u
IP=/usr/local/sbin/ip
WGX=/usr/local/sbin/wg-exec
mkdir -p /test/keys; umask 077
wg genkey > /test/keys/big.key
now() { cut -d' ' -f1 /proc/uptime; }
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
check() { # iface, N
    peers=$(wg show "$1" peers | wc -l)
    routes=$(($($IP -4 route show dev "$1" | grep -c '^198') + $($IP -6 route show dev "$1" | grep -c '^2001:db8:4::')))
    [ "$peers" = "$2" ] && [ "$routes" = $(($2 * 2)) ] || { echo "FAIL: $1 has $peers peers, $routes routes"; exit 1; }
}
modprobe wireguard
# The table goes into BENCHMARKS.md's vm block: scripts/vm-test --bench | python3 scripts/bench-record
# (a failed check exits before the end marker, so an incomplete block is never recorded).
echo "<!-- bench:vm begin -->"
echo "Written by \`scripts/vm-test --bench\` on $(date -u '+%Y-%m-%d %H:%M UTC') (kernel $(uname -r), TCG), medians of 3."
echo
echo "| N | batched up | wg-exec up | ratio | ip link del | wg-exec down | ratio |"
echo "|---|---|---|---|---|---|---|"
for n in 1000 5000; do
    sed "s#@KEY@#$(cat /test/keys/big.key)#" /test/bench-$n.conf > /tmp/bench.conf
    bu=""; bd=""; eu=""; ed=""
    for run in 1 2 3; do
        t0=$(now); $IP link add wgb type wireguard && wg setconf wgb /tmp/bench.conf && $IP -batch /test/bench-$n.batch; t1=$(now)
        check wgb $n
        t2=$(now); $IP link del wgb; t3=$(now)
        bu="$bu $(echo "$t1 $t0" | awk '{print $1 - $2}')"; bd="$bd $(echo "$t3 $t2" | awk '{print $1 - $2}')"
        t0=$(now); $WGX up wge --config /test/bench-$n.ron || exit 1; t1=$(now)
        check wge $n
        t2=$(now); $WGX down wge --config /test/bench-$n.ron || exit 1; t3=$(now)
        eu="$eu $(echo "$t1 $t0" | awk '{print $1 - $2}')"; ed="$ed $(echo "$t3 $t2" | awk '{print $1 - $2}')"
    done
    mbu=$(median3 $bu); meu=$(median3 $eu); mbd=$(median3 $bd); med=$(median3 $ed)
    echo "| $n | $mbu s | $meu s | $(echo "$meu $mbu" | awk '{printf "%.2f", $1 / $2}') | $mbd s | $med s | $(echo "$med $mbd" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "-" }') |"
done
echo "<!-- bench:vm end -->"
