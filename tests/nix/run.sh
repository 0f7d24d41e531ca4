#!/usr/bin/env bash
# Offline tests of the NixOS module (nix/module.nix, nix/render.nix) with Debian's nix-bin:
#  1. the module's own VM test scenarios and every option, rendered to RON: `wg-exec check`
#     accepts them and `wg-exec up/down --print` equals the script backend's commands, up to
#     the differences in tests/nix/differences.md;
#  2. hook strings with quotes, backslashes, newlines and non-ASCII text come back exactly;
#  3. nix/module.nix evaluated with a stand-in for lib (tests/nix/lib-stub.nix): options,
#     defaults, /etc/wg-exec/NAME.ron, the units, reload vs restart, assertions, the switch.
# One line per check, then "N passed, M failed"; exit 1 on any failure. Needs root (namespaces,
# apt-get); installs nix-bin, jq and wireguard-tools when missing. Under CI=true anything that
# keeps it from running is a failure; elsewhere it says so loudly and exits 0.
#
#   bash tests/nix/run.sh            WG_EXEC=/path/to/wg-exec to test another binary
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
here=$repo/tests/nix

pass=0
fail=0
ok() {
    pass=$((pass + 1))
    echo "ok - $1"
}
bad() {
    fail=$((fail + 1))
    echo "FAIL - $1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/    /'; fi
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}
# Something that keeps the tests from running at all.
cannot() {
    if [ "${CI:-}" = true ]; then
        bad "tests/nix cannot run: $*"
    else
        echo "tests/nix/run.sh: NOT RUN: $*" >&2
    fi
    finish
}

[ "$(id -u)" = 0 ] || cannot "needs root (network namespaces for wg-exec check, apt-get)"

# ---- prerequisites ----
apt_install() { # package...
    command -v apt-get >/dev/null || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
    apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1
}
for need in nix-instantiate:nix-bin jq:jq wg:wireguard-tools ip:iproute2; do
    cmd=${need%%:*}
    pkg=${need#*:}
    command -v "$cmd" >/dev/null || apt_install "$pkg" || cannot "$cmd missing and apt-get install -y $pkg failed"
done

# Evaluation only: nothing is built or fetched, no daemon is needed and the store is not
# written (--readonly-mode), so this works offline.
export NIX_REMOTE=local
nixeval() { # file, then --argstr NAME VALUE...
    nix-instantiate --readonly-mode --eval --strict --json "$@"
}
[ "$(nixeval --expr '1 + 1' 2>&1)" = 2 ] || cannot "nix-instantiate --eval does not work here: $(nixeval --expr '1 + 1' 2>&1 | head -3)"

if [ -n "${WG_EXEC:-}" ]; then
    wgexec=$WG_EXEC
else
    command -v cargo >/dev/null || cannot "cargo missing (or set WG_EXEC to a wg-exec binary)"
    cargo build --locked -q 2>&1 | tail -5
    wgexec=$repo/target/debug/wg-exec
fi
[ -x "$wgexec" ] || cannot "no wg-exec binary at $wgexec"

# ---- scratch directory, keys, namespaces (unique names, removed at exit) ----
dir=$(mktemp -d /tmp/wg-exec-nix.XXXXXX)
ns_s=wgxs$$
ns_i=wgxi$$
ns_missing=wgxm$$
cleanup() {
    for n in "$ns_s" "$ns_i" "$ns_missing"; do
        [ -e "/run/netns/$n" ] && ip netns del "$n" 2>/dev/null
    done
    rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/keys" "$dir/ron" "$dir/out" "$dir/state"
(
    umask 077
    for k in a b c d; do wg genkey >"$dir/keys/$k.key"; done
    wg genpsk >"$dir/keys/psk"
)
for n in "$ns_s" "$ns_i"; do
    ip netns add "$n" || cannot "ip netns add $n failed"
done

write_env() { # gen1pub gen2pub
    local keys='{}'
    for k in a b c d; do
        keys=$(jq -c --arg k "$k" --arg priv "$(cat "$dir/keys/$k.key")" --arg pub "$(wg pubkey <"$dir/keys/$k.key")" \
            --arg file "$dir/keys/$k.key" '. + {($k): {priv: $priv, pub: $pub, file: $file}}' <<<"$keys")
    done
    jq -n --arg dir "$dir" --argjson keys "$keys" --arg pskfile "$dir/keys/psk" --arg pskinline "$(wg genpsk)" \
        --arg s "$ns_s" --arg i "$ns_i" --arg missing "$ns_missing" --arg g1 "$1" --arg g2 "$2" \
        '{dir: $dir, keys: $keys, psk: {file: $pskfile, inline: $pskinline},
          ns: {s: $s, i: $i, missing: $missing},
          gen: {"1": (if $g1 == "" then null else $g1 end), "2": (if $g2 == "" then null else $g2 end)}}' >"$dir/env.json"
}

# Renders the scenarios of one stage and runs wg-exec on each.
run_stage() { # stage
    local json
    if ! json=$(nixeval "$here/driver.nix" --argstr envFile "$dir/env.json" --argstr what render --argstr stage "$1" 2>&1); then
        bad "render.nix: the scenarios of stage $1 evaluate" "$json"
        return
    fi
    ok "render.nix: the scenarios of stage $1 evaluate ($(jq length <<<"$json") configurations)"
    local n
    n=$(jq length <<<"$json")
    for ((x = 0; x < n; x++)); do
        local id iface check same absent ron out
        id=$(jq -r ".[$x].id" <<<"$json")
        iface=$(jq -r ".[$x].iface" <<<"$json")
        check=$(jq -r ".[$x].check" <<<"$json")
        same=$(jq -r ".[$x].sameAs" <<<"$json")
        absent=$(jq -r ".[$x].absent" <<<"$json")
        local wrap=()
        [ "$(jq -r ".[$x].inNs" <<<"$json")" = true ] && wrap=(ip netns exec "$ns_i")
        ron=$dir/ron/$id.ron
        out=$dir/out/$id
        jq -j ".[$x].ron" <<<"$json" >"$ron"
        if [ "$check" != skip ]; then
            "$wgexec" check "$iface" --config "$ron" >/dev/null 2>"$out.check.err"
            echo $? >"$out.check.rc"
        fi
        if [ "$check" = later ]; then
            # pre_setup makes what the configuration names (as nixpkgs' own namespace test
            # does): check says so, and the real up runs pre_setup and comes up; then down. A
            # configuration without namespace options runs in a test namespace (inNs: its link
            # would otherwise be born in the machine's own); one that names its socket namespace
            # runs here, as under systemd (ip netns exec's private mounts would hide the
            # namespace pre_setup mounts from the later down). Own state directory.
            if [ -n "$absent" ]; then
                "${wrap[@]}" env WG_EXEC_STATE_DIR="$dir/state" timeout 30 "$wgexec" up "$iface" --config "$ron" >/dev/null 2>"$out.up-real.err"
                echo $? >"$out.up-real.rc"
                if [ -e "$absent" ]; then echo present; else echo absent; fi >"$out.up-real.absent"
                "${wrap[@]}" env WG_EXEC_STATE_DIR="$dir/state" timeout 30 "$wgexec" down "$iface" --config "$ron" >/dev/null 2>"$out.down-real.err"
                echo $? >"$out.down-real.rc"
            fi
            continue
        fi
        if [ "$check" = invalid ]; then
            # The real thing: up refuses before any step, so pre_setup does not make what the
            # configuration names. Its own state directory; the namespace and the scratch
            # directory are removed at exit anyway.
            if [ -n "$absent" ]; then
                WG_EXEC_STATE_DIR=$dir/state timeout 30 "$wgexec" up "$iface" --config "$ron" >/dev/null 2>"$out.up-real.err"
                echo $? >"$out.up-real.rc"
                if [ -e "$absent" ]; then echo present; else echo absent; fi >"$out.up-real.absent"
            fi
            continue
        fi
        "$wgexec" up "$iface" --config "$ron" --print >"$out.up" 2>"$out.up.err"
        WG_EXEC_STATE_DIR=$dir/state "$wgexec" down "$iface" --config "$ron" --print >"$out.down" 2>"$out.down.err"
        if [ -n "$same" ]; then
            "$wgexec" up "$iface" --config "$repo/$same" --print >"$out.same" 2>/dev/null
            WG_EXEC_STATE_DIR=$dir/state "$wgexec" down "$iface" --config "$repo/$same" --print >"$out.same-down" 2>/dev/null
        fi
    done
}

# Prints the { name, ok, detail } checks of a Nix evaluation.
report() { # what, extra args...
    local json
    if ! json=$(nixeval "$here/driver.nix" --argstr envFile "$dir/env.json" --argstr what "$@" 2>&1); then
        bad "driver.nix ($1) evaluates" "$json"
        return
    fi
    while IFS= read -r line; do
        if [ "$(jq -r .ok <<<"$line")" = true ]; then
            ok "$(jq -r .name <<<"$line")"
        else
            bad "$(jq -r .name <<<"$line")" "$(jq -r .detail <<<"$line")"
        fi
    done < <(jq -c '.[]' <<<"$json")
}

write_env "" ""
run_stage 1

# generated.nix, second half: run the key generation exactly as wg-exec printed it (the first
# line of its plan), then give each host a peer keyed by the other's generated public key.
g=()
for h in 1 2; do
    line=$(head -n 1 "$dir/out/generated-peer$h.up" 2>/dev/null)
    key=$dir/gen-$h/etc/wireguard/private
    case $line in
    "mkdir -p -m 0755 "*) ;;
    *)
        bad "generated-peer$h: wg-exec's plan starts with the key generation" "first line: $line"
        continue
        ;;
    esac
    sh -c "$line" && sh -c "$line" # the second time must change nothing
    modes="$(stat -c %a "$(dirname "$key")" 2>&1) $(stat -c %a "$key" 2>&1)"
    if pub=$(wg pubkey <"$key" 2>/dev/null) && [ "$modes" = "755 600" ]; then
        ok "generated-peer$h: the printed key generation makes the key (directory 0755, file 0600)"
        g+=("$pub")
    else
        bad "generated-peer$h: the printed key generation makes the key (directory 0755, file 0600)" "modes: $modes"
        g+=("")
    fi
done
before=$(cat "$dir"/gen-1/etc/wireguard/private 2>/dev/null)
sh -c "$(head -n 1 "$dir/out/generated-peer1.up")" 2>/dev/null
if [ -n "$before" ] && [ "$before" = "$(cat "$dir/gen-1/etc/wireguard/private")" ]; then
    ok "generated-peer1: running the key generation again keeps the key"
else
    bad "generated-peer1: running the key generation again keeps the key"
fi
write_env "${g[0]:-}" "${g[1]:-}"
if [ -n "${g[0]:-}" ] && [ -n "${g[1]:-}" ]; then
    run_stage 2
fi

report compare --argstr outDir "$dir/out"
report module

# ---- the module's units have the shipped units' settings ----
# nix/render.nix reads them from systemd/; this reads both sides independently (awk, not the
# module's parser) and compares the [Service] lines: the module's wireguard-wg0.service without
# hooks against systemd/wg-exec@.service, its wg-exec-refresh@wg0.service against
# systemd/wg-exec-refresh@.service. Allowed differences: the program's path and %i (the unit
# files are rendered with /usr/sbin/wg-exec and wg0), true/false for yes/no, the order of
# different keys (NixOS sorts them; the order of one key's lines is kept), and D15 in
# differences.md: ProtectHome=read-only instead of yes.
service_lines() { # a unit's text on stdin -> its [Service] Key=value lines, sorted by key
    awk '/^\[/ { s = ($0 == "[Service]"); next } s && !/^[[:space:]]*([#;]|$)/' |
        sed -E 's/^([A-Za-z]+)=(true)$/\1=yes/; s/^([A-Za-z]+)=false$/\1=no/' | sort -s -t= -k1,1
}
if units=$(nixeval "$here/unit-files.nix" --argstr bin /usr/sbin/wg-exec --argstr endpoint vpn.example.org:51820 2>&1); then
    for pair in "wireguard-wg0.service wg-exec@.service" "wg-exec-refresh@wg0.service wg-exec-refresh@.service"; do
        set -- $pair
        want=$(sed 's/%i/wg0/g' "$repo/systemd/$2" | service_lines)
        [ "$1" = wireguard-wg0.service ] && want=$(sed 's/^ProtectHome=yes$/ProtectHome=read-only/' <<<"$want")
        have=$(jq -r --arg u "$1" '.[$u] // ""' <<<"$units" | service_lines)
        if [ -n "$have" ] && [ "$have" = "$want" ]; then
            ok "units: the module's $1 has the [Service] settings of systemd/$2 ($(wc -l <<<"$have") lines)"
        else
            bad "units: the module's $1 has the [Service] settings of systemd/$2" \
                "$(diff <(echo "$want") <(echo "$have") | sed 's/^</shipped:/; s/^>/module: /')"
        fi
    done
else
    bad "tests/nix/unit-files.nix evaluates" "$units"
fi

finish
