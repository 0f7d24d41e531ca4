# wg-exec's NixOS module, the part that needs no nixpkgs: option values in, RON text, /etc
# entries, systemd unit definitions, assertions and warnings out. Only Nix builtins are used,
# so that this file can be evaluated (and tested) with a bare `nix-instantiate --eval`.
#
# The values are those of `networking.wireguard.interfaces.<name>` as the module system
# produces them (every option present, camelCase names). Missing attributes take the defaults
# below, so a plain attribute set works too (the tests use that).
let
  inherit (builtins)
    all
    any
    attrNames
    concatLists
    concatMap
    concatStringsSep
    filter
    foldl'
    hashString
    isList
    isString
    length
    match
    replaceStrings
    stringLength
    substring
    toJSON
    toString
    ;

  # ---- defaults: the option table of networking.wireguard (and wg-exec's two extras) ----

  interfaceDefaults = {
    ips = [ ];
    privateKey = null;
    privateKeyFile = null;
    generatePrivateKeyFile = false;
    listenPort = null;
    preSetup = "";
    postSetup = "";
    preShutdown = "";
    postShutdown = "";
    table = "main";
    peers = [ ];
    allowedIPsAsRoutes = true;
    socketNamespace = null;
    interfaceNamespace = null;
    fwMark = null;
    mtu = null;
    metric = null;
    dynamicEndpointRefreshSeconds = 0;
    type = "wireguard";
    extraOptions = { };
    # wg-exec only (the script backend ignores them).
    backend = "auto";
    userspaceImplementation = null;
  };

  peerDefaults = {
    # name: the escaped public key (see peerName), as in the module.
    presharedKey = null;
    presharedKeyFile = null;
    endpoint = null;
    dynamicEndpointRefreshSeconds = null;
    dynamicEndpointRefreshRestartSeconds = null;
    persistentKeepalive = null;
  };

  # The module's default peer name: the public key escaped for a unit name.
  escapeKey = replaceStrings [ "/" "-" " " "+" "=" ] [ "-" "\\x2d" "\\x20" "\\x2b" "\\x3d" ];

  withPeerDefaults = p: peerDefaults // { name = escapeKey p.publicKey; } // p;

  withDefaults = cfg: interfaceDefaults // cfg // { peers = map withPeerDefaults (cfg.peers or [ ]); };

  # ---- small string helpers ----

  optional = c: x: if c then [ x ] else [ ];
  optionalAttrs = c: a: if c then a else { };
  splitLines = s: filter isString (builtins.split "\n" s);

  # `lines` values arrive as one string (the module's coercedTo joins lists with "\n"); a list
  # is accepted here too. Trailing newlines are no commands: they are dropped.
  hookText =
    v:
    let
      s = if isList v then concatStringsSep "\n" v else v;
      strip = t: if t != "" && substring (stringLength t - 1) 1 t == "\n" then strip (substring 0 (stringLength t - 1) t) else t;
    in
    strip s;

  # A RON string: only `\` and `"` need escaping (RON takes every other character raw); line
  # breaks, carriage returns and tabs are escaped for readability.
  ronStr = s: "\"" + replaceStrings [ "\\" "\"" "\n" "\r" "\t" ] [ "\\\\" "\\\"" "\\n" "\\r" "\\t" ] s + "\"";
  ronList = xs: "[" + concatStringsSep ", " (map ronStr xs) + "]";

  # An endpoint's host part is a name (not an IPv4 or [IPv6] literal): only those are refreshed.
  endpointIsName =
    e:
    e != null
    && match "[[][^]]*[]]:[0-9]+" e == null
    && match "[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+:[0-9]+" e == null;

  effectiveRefresh = cfg: p: if p.dynamicEndpointRefreshSeconds != null then p.dynamicEndpointRefreshSeconds else cfg.dynamicEndpointRefreshSeconds;

  backendNames = {
    auto = "Auto";
    kernel = "Kernel";
    userspace = "Userspace";
  };

  # ---- RON ----

  field = indent: k: v: "${indent}${k}: ${v},\n";

  # A hook as RON: omitted when empty, a string for one line, a list of lines otherwise
  # (wg-exec joins the lines with "\n" and runs them as one `/bin/sh -e -c` script).
  hookField =
    indent: k: v:
    let
      t = hookText v;
      ls = splitLines t;
    in
    if t == "" then
      ""
    else if length ls == 1 then
      field indent k (ronStr t)
    else
      "${indent}${k}: [\n" + concatStringsSep "" (map (l: "${indent}    ${ronStr l},\n") ls) + "${indent}],\n";

  opt = indent: k: v: f: if v == null then "" else field indent k (f v);

  peerRon =
    p:
    let
      i = "            ";
    in
    "        Peer(\n"
    + optionalString (p.name != escapeKey p.publicKey) (field i "name" (ronStr p.name))
    + field i "public_key" (ronStr p.publicKey)
    + opt i "preshared_key" p.presharedKey ronStr
    + opt i "preshared_key_file" p.presharedKeyFile (f: ronStr (toString f))
    + field i "allowed_ips" (ronList p.allowedIPs)
    + opt i "endpoint" p.endpoint ronStr
    + opt i "dynamic_endpoint_refresh_seconds" p.dynamicEndpointRefreshSeconds toString
    + opt i "dynamic_endpoint_refresh_restart_seconds" p.dynamicEndpointRefreshRestartSeconds toString
    + opt i "persistent_keepalive" p.persistentKeepalive toString
    + "        ),\n";

  optionalString = c: s: if c then s else "";

  ron =
    name: cfg0:
    let
      cfg = withDefaults cfg0;
      i = "    ";
    in
    "// Generated by wg-exec's NixOS module from networking.wireguard.interfaces.${name}.\n"
    + "// Applied by wireguard-${name}.service: `systemctl reload wireguard-${name}` after a change.\n"
    + "Interface(\n"
    + field i "ips" (ronList cfg.ips)
    + opt i "private_key" cfg.privateKey ronStr
    + opt i "private_key_file" cfg.privateKeyFile (f: ronStr (toString f))
    + field i "generate_private_key_file" (if cfg.generatePrivateKeyFile then "true" else "false")
    + opt i "listen_port" cfg.listenPort toString
    + hookField i "pre_setup" cfg.preSetup
    + hookField i "post_setup" cfg.postSetup
    + hookField i "pre_shutdown" cfg.preShutdown
    + hookField i "post_shutdown" cfg.postShutdown
    + field i "table" (ronStr cfg.table)
    + field i "allowed_ips_as_routes" (if cfg.allowedIPsAsRoutes then "true" else "false")
    + opt i "socket_namespace" cfg.socketNamespace ronStr
    + opt i "interface_namespace" cfg.interfaceNamespace ronStr
    + opt i "fwmark" cfg.fwMark ronStr
    + opt i "mtu" cfg.mtu toString
    + opt i "metric" cfg.metric toString
    + field i "dynamic_endpoint_refresh_seconds" (toString cfg.dynamicEndpointRefreshSeconds)
    + optionalString (cfg.backend != "auto") (field i "backend" backendNames.${cfg.backend})
    + opt i "userspace_implementation" cfg.userspaceImplementation (s: ronStr (toString s))
    + (if cfg.peers == [ ] then field i "peers" "[]" else "    peers: [\n" + concatStringsSep "" (map peerRon cfg.peers) + "    ],\n")
    + ")\n";

  # ---- what a change does on `nixos-rebuild switch` ----
  #
  # switch-to-configuration reloads a unit whose file differs only in X-Reload-Triggers, and
  # restarts it when anything else differs. The reload trigger is the whole RON file, so any
  # change reaches the interface through `wg-exec reload`; the restart trigger holds what
  # reload cannot or would not apply: the namespaces and the backend (reload refuses them), the
  # setup hooks (reload only records them, so they would not run until the next start), and
  # key generation (done by up only).
  restartRelevant = cfg: {
    inherit (cfg) socketNamespace interfaceNamespace backend generatePrivateKeyFile;
    userspaceImplementation = if cfg.userspaceImplementation == null then null else toString cfg.userspaceImplementation;
    preSetup = hookText cfg.preSetup;
    postSetup = hookText cfg.postSetup;
    privateKeyFile = if cfg.generatePrivateKeyFile then toString cfg.privateKeyFile else null;
  };

  triggers = name: cfg0: let cfg = withDefaults cfg0; in {
    reload = hashString "sha256" (ron name cfg0);
    restart = hashString "sha256" (toJSON (restartRelevant cfg));
  };

  hasHooks = cfg: any (h: hookText h != "") [ cfg.preSetup cfg.postSetup cfg.preShutdown cfg.postShutdown ];

  # The interface needs `wg-exec refresh` when a peer's endpoint is a host name: to follow DNS
  # (a period above 0) and, whatever the period, to fill in an endpoint that did not resolve at
  # boot (the script backend's peer units retried such names forever; `wg-exec up` tries for
  # 5 s and leaves the rest to refresh). IP literals never need it.
  needsRefresh = cfg: any (p: endpointIsName p.endpoint) cfg.peers;
  refreshingPeers = cfg: filter (p: endpointIsName p.endpoint && effectiveRefresh cfg p != 0) cfg.peers;

  # "/a/b/c" -> [ "/a" "/a/b" "/a/b/c" ]
  ancestors =
    p:
    let
      parts = filter (x: isString x && x != "") (builtins.split "/" p);
    in
    builtins.genList (n: "/" + concatStringsSep "/" (builtins.genList (builtins.elemAt parts) (n + 1))) (length parts);

  # systemd quoting for a path in a command line or a path list.
  sdQuote = s: "\"" + replaceStrings [ "\\" "\"" "%" ] [ "\\\\" "\\\"" "%%" ] s + "\"";

  # ---- the shipped units' settings, read from systemd/ (one source of truth) ----
  #
  # The [Service] settings of systemd/wg-exec@.service and systemd/wg-exec-refresh@.service
  # are read from those files, so that the module's units cannot drift from the shipped ones
  # (tests/nix/run.sh also compares the rendered units with the files, line by line). A
  # setting given more than once (ReadWritePaths=, SystemCallFilter=) becomes a list, in the
  # file's order, which NixOS writes back as one line per element. The Exec lines are the
  # module's own (its wg-exec store path, the interface's name instead of %i); any other
  # systemd specifier would mean something else in the module's non-template unit, so a `%`
  # elsewhere, a line continuation or a line that is no `Key=value` stops the evaluation.
  unitSettings =
    file:
    let
      trim = l: let m = match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" l; in if m == null then "" else builtins.head m;
      step =
        acc: l:
        if match "[[].*[]]" l != null then
          acc // { section = l; }
        else if l == "" || match "[#;].*" l != null || acc.section != "[Service]" then
          acc
        else
          let
            m = match "([A-Za-z]+)=(.*)" l;
            key = builtins.elemAt m 0;
            value = builtins.elemAt m 1;
          in
          if m == null || match ".*[\\]" l != null then
            throw "nix/render.nix: ${toString file}: [Service] line `${l}` is not a one-line Key=value"
          else if match "Exec.*" key == null && match ".*%.*" value != null then
            throw "nix/render.nix: ${toString file}: `${l}` has a systemd specifier, which means something else in the module's unit"
          else
            acc // { entries = acc.entries ++ [ { inherit key value; } ]; };
      entries = (foldl' step { section = ""; entries = [ ]; } (map trim (splitLines (builtins.readFile file)))).entries;
      kept = filter (e: match "Exec.*" e.key == null) entries;
      keys = foldl' (ks: e: if builtins.elem e.key ks then ks else ks ++ [ e.key ]) [ ] kept;
      valuesOf = k: map (e: e.value) (filter (e: e.key == k) kept);
    in
    builtins.listToAttrs (
      map (k: {
        name = k;
        value = let vs = valuesOf k; in if length vs == 1 then builtins.head vs else vs;
      }) keys
    );

  shippedInterface = unitSettings (../systemd + "/wg-exec@.service");
  shippedRefresh = unitSettings (../systemd + "/wg-exec-refresh@.service");

  # What the interface's unit has even with hooks (which get no sandbox): what it is, where its
  # state and sockets live, and no core files of a process that holds keys.
  unitBasics = [
    "Type"
    "RemainAfterExit"
    "StateDirectory"
    "StateDirectoryMode"
    "RuntimeDirectory"
    "RuntimeDirectoryPreserve"
    "LimitCORE"
  ];
  basics = builtins.intersectAttrs (builtins.listToAttrs (map (k: { name = k; value = null; }) unitBasics)) shippedInterface;

  # The sandbox of systemd/wg-exec@.service, with ProtectHome read-only instead of hidden (key
  # files under /root or /home must stay readable, as they were for the script backend).
  sandbox = builtins.removeAttrs shippedInterface unitBasics // { ProtectHome = "read-only"; };
  asList = v: if isList v then v else [ v ];

  # ---- units (in the shape of NixOS's systemd.services.<name> and systemd.targets.<name>) ----
  #
  # The interface's unit keeps the script backend's name, wireguard-NAME.service, and so does
  # its target, wireguard-NAME.target: configurations around the module order themselves after
  # them (`after`, `requires`, `bindsTo`) and scripts run `systemctl restart wireguard-NAME`.
  # An alias cannot do it: systemd ignores an alias from a plain name to a template instance
  # (wg-exec@NAME.service), and NixOS writes unitConfig into [Unit], where Alias= means nothing.
  # So the unit itself is named wireguard-NAME and runs wg-exec, with the template's sandbox.
  # The per-peer units (wireguard-NAME-peer-PEER[-refresh].service) have no equivalent: the
  # peers are part of the interface's unit.
  #
  #   bin    the wg-exec executable ("${pkg}/bin/wg-exec")
  #   path   packages for the units' PATH (the script backend had kmod, iproute2, wireguard-tools)
  #   mkdir  an absolute mkdir, for creating a generated key's directory outside the sandbox
  interfaceUnit = name: "wireguard-${name}";
  refreshUnit = name: "wg-exec-refresh@${name}";

  units =
    {
      name,
      cfg,
      bin,
      path ? [ ],
      mkdir ? null,
    }:
    let
      c = withDefaults cfg;
      t = triggers name cfg;
      unit = interfaceUnit name;
      hardened = !(hasHooks c);
      keyDir = dirOf (toString c.privateKeyFile);
      generating = c.generatePrivateKeyFile && c.privateKeyFile != null;
    in
    {
      ${unit} = {
        description = "WireGuard Tunnel - ${name} (wg-exec)";
        documentation = [ "man:wg-exec(8)" ];
        after = [ "network-pre.target" ];
        wants = [ "network-pre.target" ];
        before = [ "network.target" ];
        wantedBy = [ "multi-user.target" ];
        # `systemctl stop/restart wireguard-NAME.target` reaches the interface.
        partOf = [ "${unit}.target" ];
        inherit path;
        reloadTriggers = [ t.reload ];
        restartTriggers = [ t.restart ];
        serviceConfig =
          {
            ExecStart = "${bin} up ${name}";
            ExecReload = "${bin} reload ${name}";
            ExecStop = "${bin} down ${name}";
          }
          # The shipped unit's: oneshot, remains after exit, journals and locks in
          # /var/lib/wg-exec (0700; no stop, failure or kill removes them), the UAPI sockets in
          # /run/wireguard, no core files.
          // basics
          # Hooks run inside the unit with wg-exec's privileges and may do anything the
          # script backend let them do: an interface with hooks gets no sandbox.
          // optionalAttrs hardened (
            sandbox
            // {
              ReadWritePaths = asList (sandbox.ReadWritePaths or [ ]) ++ optional generating ("-" + sdQuote keyDir);
            }
            // optionalAttrs (generating && mkdir != null) {
              # The key's directory may not exist yet and the sandbox makes / read-only: it is
              # made outside the sandbox (0755 as the module made it, and so are missing parents,
              # whatever the unit's UMask; existing ones keep their mode); wg-exec writes the key.
              ExecStartPre = "+${mkdir} -p -m 0755 ${concatStringsSep " " (map sdQuote (ancestors keyDir))}";
            }
          );
      };
    }
    // optionalAttrs (needsRefresh c) {
      ${refreshUnit name} = {
        description = "Endpoint refresh of WireGuard interface ${name} (wg-exec)";
        documentation = [ "man:wg-exec-refresh(8)" ];
        bindsTo = [ "${unit}.service" ];
        after = [
          "${unit}.service"
          "network-online.target"
        ];
        wants = [ "network-online.target" ];
        wantedBy = [ "${unit}.service" ];
        unitConfig.StartLimitIntervalSec = 0;
        # systemd/wg-exec-refresh@.service's settings, with the module's ExecStart.
        serviceConfig = shippedRefresh // {
          ExecStart = "${bin} refresh ${name}";
        };
      };
    };

  # The script backend's wireguard-NAME.target, kept: it wants the interface (and its refresh,
  # in place of the peer units it wanted) and is ordered after them, so `after = [
  # "wireguard-NAME.target" ]` still means "after the interface and its peers are set up".
  targets =
    { name, cfg }:
    let
      c = withDefaults cfg;
      wants = [ "${interfaceUnit name}.service" ] ++ optional (needsRefresh c) "${refreshUnit name}.service";
    in
    {
      ${interfaceUnit name} = {
        description = "WireGuard Tunnel - ${name} (wg-exec)";
        wantedBy = [ "multi-user.target" ];
        inherit wants;
        after = wants;
      };
    };

  # ---- assertions and warnings ----

  opt' = name: o: "networking.wireguard.interfaces.${name}.${o}";

  assertions =
    name: cfg0:
    let
      cfg = withDefaults cfg0;
      keys = map (p: p.publicKey) cfg.peers;
      names = map (p: p.name) cfg.peers;
      dups = xs: filter (x: length (filter (y: y == x) xs) > 1) xs;
    in
    [
      # The module's three.
      {
        assertion = (cfg.privateKey != null) != (cfg.privateKeyFile != null);
        message = "Either ${opt' name "privateKey"} or ${opt' name "privateKeyFile"} must be set.";
      }
      {
        assertion = !cfg.generatePrivateKeyFile || cfg.privateKey == null;
        message = "${opt' name "generatePrivateKeyFile"} must not be set if ${opt' name "privateKey"} is set.";
      }
    ]
    ++ map (p: {
      assertion = p.presharedKey == null || p.presharedKeyFile == null;
      message = "networking.wireguard.interfaces.${name} peer «${p.publicKey}» has both presharedKey and presharedKeyFile set, but only one can be used.";
    }) cfg.peers
    # What wg-exec would refuse at run time, said at evaluation instead.
    ++ [
      {
        assertion = match "[A-Za-z0-9_.-]{1,15}" name != null;
        message = "networking.wireguard.interfaces.${name}: with networking.wireguard.useWgExec the interface name must be 1-15 characters from A-Z a-z 0-9 _ . - (a Linux interface name that is also a systemd instance name).";
      }
      {
        assertion = cfg.type == "wireguard";
        message = "${opt' name "type"} = \"${cfg.type}\" is not supported by wg-exec (networking.wireguard.useWgExec): only \"wireguard\".";
      }
      {
        assertion = cfg.extraOptions == { };
        message = "${opt' name "extraOptions"} (${concatStringsSep ", " (attrNames cfg.extraOptions)}) is not supported by wg-exec (networking.wireguard.useWgExec).";
      }
      {
        assertion = dups keys == [ ];
        message = "networking.wireguard.interfaces.${name}: peers share a public key (${concatStringsSep ", " (dups keys)}); each peer needs its own.";
      }
      {
        assertion = dups names == [ ];
        message = "networking.wireguard.interfaces.${name}: peers share a name (${concatStringsSep ", " (dups names)}); names must be unique.";
      }
      {
        assertion = cfg.dynamicEndpointRefreshSeconds >= 0 && all (p: p.dynamicEndpointRefreshSeconds == null || p.dynamicEndpointRefreshSeconds >= 0) cfg.peers;
        message = "networking.wireguard.interfaces.${name}: dynamicEndpointRefreshSeconds must be 0 (never) or a number of seconds.";
      }
    ];

  warnings =
    name: cfg0:
    let
      cfg = withDefaults cfg0;
    in
    optional (cfg.privateKey != null) "${opt' name "privateKey"} is written into /etc/wg-exec/${name}.ron, which is built in the world-readable Nix store; use privateKeyFile (with generatePrivateKeyFile) instead."
    ++ concatMap (
      p:
      optional (p.presharedKey != null) "networking.wireguard.interfaces.${name} peer «${p.publicKey}»: presharedKey is written into /etc/wg-exec/${name}.ron, which is built in the world-readable Nix store; use presharedKeyFile instead."
    ) cfg.peers
    ++ concatMap (
      p:
      optional (cfg.allowedIPsAsRoutes && (cfg.table == "main" || cfg.table == "254") && any (a: match ".*/0" a != null) p.allowedIPs)
        "networking.wireguard.interfaces.${name} peer «${p.publicKey}»: an allowed IP /0 becomes a route in table main, which takes over the default route and can cut off the endpoint; set allowedIPsAsRoutes = false or use another table with policy routing."
    ) cfg.peers;

  # ---- everything for one interface, and for all of them ----

  interface =
    {
      name,
      cfg,
      bin,
      path ? [ ],
      mkdir ? null,
    }:
    {
      ron = ron name cfg;
      etc."wg-exec/${name}.ron" = {
        text = ron name cfg;
        mode = "0600";
      };
      services = units { inherit name cfg bin path mkdir; };
      targets = targets { inherit name cfg; };
      assertions = assertions name cfg;
      warnings = warnings name cfg;
      triggers = triggers name cfg;
    };

  all' =
    {
      interfaces,
      bin,
      path ? [ ],
      mkdir ? null,
    }:
    let
      each = map (name: interface { inherit name bin path mkdir; cfg = interfaces.${name}; }) (attrNames interfaces);
      merge = f: foldl' (a: b: a // f b) { } each;
    in
    {
      etc = merge (x: x.etc);
      services = merge (x: x.services);
      targets = merge (x: x.targets);
      assertions = concatMap (x: x.assertions) each;
      warnings = concatMap (x: x.warnings) each;
    };
in
{
  inherit
    interfaceDefaults
    peerDefaults
    escapeKey
    withDefaults
    hookText
    ronStr
    ron
    triggers
    units
    targets
    interfaceUnit
    refreshUnit
    assertions
    warnings
    interface
    endpointIsName
    needsRefresh
    refreshingPeers
    effectiveRefresh
    ;
  all = all';
}
