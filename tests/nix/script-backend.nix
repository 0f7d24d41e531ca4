# The commands NixOS's networking.wireguard script backend runs for an interface, as listed in
# shared/reference/nixos-module.md ("What the script backend runs"), written the way the
# reference writes them (unquoted). S = socketNamespace, I = interfaceNamespace; a command "in
# ns X" is prefixed `ip netns exec X` unless X is null or "init". Not in a container (the
# modprobe line is there).
#
#   import ./script-backend.nix name cfg  ->  { keygen; interface; postSetup; peers; down; }
#
# peers is a list of { set; routes; } (one unit per peer, started in parallel after the
# interface's unit); everything else is a list of command lines in order.
name: cfg0:
let
  inherit (builtins) concatStringsSep filter isString length;
  render = import ../../nix/render.nix;
  cfg = render.withDefaults cfg0;
  S = cfg.socketNamespace;
  I = cfg.interfaceNamespace;
  optional = c: x: if c then [ x ] else [ ];
  optionalString = c: s: if c then s else "";

  # The last of S, I that is set decides (the module's nsWrap).
  wrap =
    nss: cmd:
    let
      set = filter (n: n != null) nss;
      ns = if set == [ ] then null else builtins.elemAt set (length set - 1);
    in
    if ns != null && ns != "init" then "ip netns exec ${ns} ${cmd}" else cmd;
  ipPre = wrap [ S ] "ip";
  ipPost = wrap [ S I ] "ip";
  wg = wrap [ S I ] "wg";

  hookLines =
    v:
    let
      t = render.hookText v;
    in
    if t == "" then [ ] else filter isString (builtins.split "\n" t);

  # An inline secret is written to a store file whose path is passed to wg.
  privKey = if cfg.privateKeyFile != null then toString cfg.privateKeyFile else "/nix/store/00000000000000000000000000000000-wg-key";
  psk =
    p:
    if p.presharedKey != null then
      "/nix/store/00000000000000000000000000000000-wg-psk"
    else if p.presharedKeyFile != null then
      toString p.presharedKeyFile
    else
      null;
in
{
  keygen = optional cfg.generatePrivateKeyFile "mkdir -p -m 0755 ${dirOf (toString cfg.privateKeyFile)}"
    ++ optional cfg.generatePrivateKeyFile "if [ ! -f ${toString cfg.privateKeyFile} ]; then (umask 077; wg genkey > ${toString cfg.privateKeyFile}); fi";

  interface =
    [ "modprobe wireguard || true" ]
    ++ hookLines cfg.preSetup
    ++ [ "${ipPre} link add dev ${name} type wireguard" ]
    ++ optional (I != null && I != S) "${ipPre} link set ${name} netns ${if I == "init" then "1" else I}"
    ++ optional (cfg.mtu != null) "${ipPost} link set ${name} mtu ${toString cfg.mtu}"
    ++ map (ip: "${ipPost} address add ${ip} dev ${name}") cfg.ips
    ++ [
      (concatStringsSep " " (
        [ "${wg} set ${name} private-key ${privKey}" ]
        ++ optional (cfg.listenPort != null) "listen-port ${toString cfg.listenPort}"
        ++ optional (cfg.fwMark != null) "fwmark ${cfg.fwMark}"
      ))
      "${ipPost} link set up dev ${name}"
    ];

  postSetup = hookLines cfg.postSetup;

  peers = map (p: {
    set = concatStringsSep " " (
      [ "${wg} set ${name} peer ${p.publicKey}" ]
      ++ optional (psk p != null) "preshared-key ${psk p}"
      ++ optional (p.endpoint != null) "endpoint ${p.endpoint}"
      ++ optional (p.persistentKeepalive != null) "persistent-keepalive ${toString p.persistentKeepalive}"
      ++ optional (p.allowedIPs != [ ]) "allowed-ips ${concatStringsSep "," p.allowedIPs}"
    );
    routes =
      if cfg.allowedIPsAsRoutes then
        map (
          a: "${ipPost} route replace ${a} dev ${name} table ${cfg.table}${optionalString (cfg.metric != null) " metric ${toString cfg.metric}"}"
        ) p.allowedIPs
      else
        [ ];
    remove =
      [ "${wg} set ${name} peer ${p.publicKey} remove" ]
      ++ (if cfg.allowedIPsAsRoutes then map (a: "${ipPost} route delete ${a} dev ${name} table ${cfg.table}") p.allowedIPs else [ ]);
  }) cfg.peers;

  preShutdown = hookLines cfg.preShutdown;
  linkDel = "${ipPost} link del dev ${name}";
  postShutdown = hookLines cfg.postShutdown;
}
