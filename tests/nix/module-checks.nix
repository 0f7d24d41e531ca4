# nix/module.nix evaluated with the lib stand-in (./lib-stub.nix): its options and their
# defaults, the files and units it defines, what a change does on `nixos-rebuild switch`, its
# assertions and warnings, and the switch between the backends. A list of { name, ok, detail }.
{ env }:
let
  inherit (builtins)
    all
    any
    attrNames
    elem
    filter
    length
    match
    sort
    toJSON
    tryEval
    ;
  lib = import ./lib-stub.nix;
  inherit (import ./compare.nix) hasInfix;
  render = import ../../nix/render.nix;
  module = ../../nix/module.nix;

  pkgs = {
    wg-exec = "/nix/store/00000000000000000000000000000000-wg-exec-0.1.0";
    wireguard-go = "/nix/store/11111111111111111111111111111111-wireguard-go";
    wireguard-tools = "/nix/store/22222222222222222222222222222222-wireguard-tools";
    iproute2 = "/nix/store/33333333333333333333333333333333-iproute2";
    kmod = "/nix/store/44444444444444444444444444444444-kmod";
    coreutils = "/nix/store/55555555555555555555555555555555-coreutils";
  };
  bin = "${pkgs.wg-exec}/bin/wg-exec";

  # A NixOS-like `config`: networking.wireguard set by the test, everything else from the module.
  evalWith =
    {
      wireguard,
      modules ? [ ],
      specialArgs ? { },
    }:
    lib.evalModules {
      modules = [ module ] ++ modules;
      specialArgs = { inherit pkgs; } // specialArgs;
      config.networking.wireguard = wireguard;
    };
  eval = wireguard: (evalWith { inherit wireguard; }).config;

  k = env.keys;
  base = {
    privateKeyFile = k.a.file;
    ips = [ "192.0.2.1/24" ];
    peers = [
      {
        publicKey = k.b.pub;
        allowedIPs = [ "192.0.2.0/25" ];
        endpoint = "198.51.100.2:51820";
      }
    ];
  };
  on = ifaces: {
    useWgExec = true;
    interfaces = ifaces;
  };

  check = name: ok: detail: {
    inherit name;
    ok = ok == true;
    detail = if ok == true then "" else detail;
  };
  eq =
    name: want: got:
    check name (want == got) "expected ${toJSON want}\n    got      ${toJSON got}";

  # ---- options and defaults (shared/reference/nixos-module.md's tables) ----
  c0 = eval (on { wg0 = { privateKeyFile = "/k"; peers = [ { publicKey = "a/b+c="; allowedIPs = [ ]; } ]; }; });
  i0 = c0.networking.wireguard.interfaces.wg0;
  p0 = builtins.head i0.peers;
  wantInterface = {
    ips = [ ];
    privateKey = null;
    privateKeyFile = "/k";
    generatePrivateKeyFile = false;
    listenPort = null;
    preSetup = "";
    postSetup = "";
    preShutdown = "";
    postShutdown = "";
    table = "main";
    allowedIPsAsRoutes = true;
    socketNamespace = null;
    interfaceNamespace = null;
    fwMark = null;
    mtu = null;
    metric = null;
    dynamicEndpointRefreshSeconds = 0;
    type = "wireguard";
    extraOptions = { };
    backend = "auto";
    userspaceImplementation = "${pkgs.wireguard-go}/bin/wireguard-go";
  };
  wantPeer = {
    name = "a-b\\x2bc\\x3d";
    publicKey = "a/b+c=";
    presharedKey = null;
    presharedKeyFile = null;
    allowedIPs = [ ];
    endpoint = null;
    dynamicEndpointRefreshSeconds = null;
    dynamicEndpointRefreshRestartSeconds = null;
    persistentKeepalive = null;
  };
  fails = v: !(tryEval (builtins.deepSeq v v)).success;
  iface1 = extra: (eval (on { wg0 = { privateKeyFile = "/k"; } // extra; })).networking.wireguard.interfaces.wg0;
  peer1 = extra: builtins.head (iface1 { peers = [ ({ publicKey = "k"; allowedIPs = [ ]; } // extra) ]; }).peers;

  optionChecks = [
    (eq "options: interface option names (the module's table + backend, userspaceImplementation)" (sort (a: b: a < b) (attrNames wantInterface ++ [ "peers" ])) (attrNames i0))
    (eq "options: interface defaults" wantInterface (removeAttrs i0 [ "peers" ]))
    (eq "options: peer option names" (attrNames wantPeer) (attrNames p0))
    (eq "options: peer defaults (name = the public key escaped as the module does)" wantPeer p0)
    (eq "options: top-level names (enable, interfaces, useWgExec, wgExecPackage)" [ "enable" "interfaces" "useWgExec" "wgExecPackage" ] (attrNames c0.networking.wireguard))
    (eq "options: useWgExec defaults to false, wgExecPackage to pkgs.wg-exec" [ false pkgs.wg-exec ] [
      (eval { }).networking.wireguard.useWgExec
      (eval { }).networking.wireguard.wgExecPackage
    ])
    (eq "options: enable defaults to interfaces != { }" [ false true ] [
      (eval { }).networking.wireguard.enable
      (eval { interfaces.wg0.privateKeyFile = "/k"; }).networking.wireguard.enable
    ])
    (eq "options: a hook given as a list is joined with newlines (coercedTo (listOf str) lines)" "a\nb" (iface1 { preSetup = [ "a" "b" ]; }).preSetup)
    (check "options: publicKey and allowedIPs have no default (required)" (fails (builtins.head (iface1 { peers = [ { allowedIPs = [ ]; } ]; }).peers) && fails (builtins.head (iface1 { peers = [ { publicKey = "k"; } ]; }).peers)) "a peer without them evaluated")
    (check "options: types are enforced (listenPort int, type enum, restart seconds unsigned, publicKey single line, unknown option)" (
      fails (iface1 { listenPort = "51820"; })
      && fails (iface1 { type = "ipsec"; })
      && fails (peer1 { dynamicEndpointRefreshRestartSeconds = -1; })
      && fails (peer1 { publicKey = "a\nb"; })
      && fails (iface1 { mtuu = 1420; })
    ) "a wrongly typed value was accepted")
    (eq "options: a peer's name can be set" "bernd" (peer1 { name = "bernd"; }).name)
  ];

  # ---- the files and units for one interface ----
  c1 = eval (on { wg0 = base; });
  etc1 = c1.environment.etc."wg-exec/wg0.ron";
  u1 = c1.systemd.services."wireguard-wg0";
  sc1 = u1.serviceConfig;
  unitChecks = [
    (eq "files: /etc/wg-exec/wg0.ron is the rendered RON, mode 0600" {
      text = render.ron "wg0" (base // { userspaceImplementation = "${pkgs.wireguard-go}/bin/wireguard-go"; });
      mode = "0600";
    } etc1)
    (check "files: no key material in the RON when keys are files" (!(hasInfix k.a.priv etc1.text) && hasInfix "private_key_file: \"${k.a.file}\"," etc1.text) etc1.text)
    (eq "units: wireguard-wg0 runs up / reload / down, oneshot, remains after exit" {
      Type = "oneshot";
      RemainAfterExit = "yes";
      ExecStart = "${bin} up wg0";
      ExecReload = "${bin} reload wg0";
      ExecStop = "${bin} down wg0";
    } { inherit (sc1) Type RemainAfterExit ExecStart ExecReload ExecStop; })
    (eq "units: ordered like the module's (after network-pre, before network.target, wanted by multi-user)" {
      after = [ "network-pre.target" ];
      before = [ "network.target" ];
      wantedBy = [ "multi-user.target" ];
    } { inherit (u1) after before wantedBy; })
    (eq "units: PATH has what the script backend's units had (kmod, iproute2, wireguard-tools)" [ pkgs.kmod pkgs.iproute2 pkgs.wireguard-tools ] u1.path)
    (eq "units: reloadTriggers = sha256 of the RON, restartTriggers = one hash" [ (builtins.hashString "sha256" etc1.text) 1 ] [
      (builtins.head u1.reloadTriggers)
      (length u1.restartTriggers)
    ])
    (eq "units: the shipped sandbox without hooks (state in /var/lib/wg-exec 0700, /etc/wg-exec/keys and /proc/sys/net writable, /home read-only, no core files)" {
      StateDirectory = "wg-exec";
      StateDirectoryMode = "0700";
      ProtectSystem = "strict";
      ProtectHome = "read-only";
      ReadWritePaths = [ "-/etc/wg-exec/keys" "-/proc/sys/net" ];
      CapabilityBoundingSet = "CAP_NET_ADMIN CAP_SYS_MODULE CAP_SYS_ADMIN CAP_NET_BIND_SERVICE CAP_SETPCAP";
      ProtectProc = "invisible";
      SystemCallFilter = [ "@system-service @module @mount setns" "~@resources" ];
      LimitCORE = "0";
    } { inherit (sc1) StateDirectory StateDirectoryMode ProtectSystem ProtectHome ReadWritePaths CapabilityBoundingSet ProtectProc SystemCallFilter LimitCORE; })
    (
      let
        sc = (eval (on { wg0 = base // { postSetup = "ip route add 192.0.2.0/24 dev wg0"; }; })).systemd.services."wireguard-wg0".serviceConfig;
      in
      eq "units: with hooks no sandbox (hooks could do anything under the script backend), only the state (0700), the sockets and no core files" [
        "ExecReload"
        "ExecStart"
        "ExecStop"
        "LimitCORE"
        "RemainAfterExit"
        "RuntimeDirectory"
        "RuntimeDirectoryPreserve"
        "StateDirectory"
        "StateDirectoryMode"
        "Type"
      ] (attrNames sc)
    )
    (
      let
        sc = (eval (on { wg0 = base // { privateKeyFile = "/etc/wireguard/private"; generatePrivateKeyFile = true; }; })).systemd.services."wireguard-wg0".serviceConfig;
      in
      eq "units: generatePrivateKeyFile makes the key's directory (0755) and lets wg-exec write there" {
        ReadWritePaths = [ "-/etc/wg-exec/keys" "-/proc/sys/net" "-\"/etc/wireguard\"" ];
        ExecStartPre = "+${pkgs.coreutils}/bin/mkdir -p -m 0755 \"/etc\" \"/etc/wireguard\"";
      } { inherit (sc) ReadWritePaths ExecStartPre; }
    )
    (eq "units: the system gets wg-exec and wireguard-tools, the wireguard module at boot" [ [ pkgs.wg-exec pkgs.wireguard-tools ] [ "wireguard" ] ] [
      c1.environment.systemPackages
      c1.boot.kernelModules
    ])
    (check "units: no refresh unit when every endpoint is an IP address" (!(c1.systemd.services ? "wg-exec-refresh@wg0")) (toJSON (attrNames c1.systemd.services)))
    (
      let
        c = eval (on { wg0 = base // { dynamicEndpointRefreshSeconds = 30; peers = [ ((builtins.head base.peers) // { endpoint = "vpn.example.org:51820"; }) ]; }; });
        r = c.systemd.services."wg-exec-refresh@wg0";
      in
      eq "units: wg-exec-refresh@wg0 for a peer known by name: refresh loop bound to wireguard-wg0" {
        ExecStart = "${bin} refresh wg0";
        Type = "simple";
        Restart = "on-failure";
        bindsTo = [ "wireguard-wg0.service" ];
        wantedBy = [ "wireguard-wg0.service" ];
        after = [ "wireguard-wg0.service" "network-online.target" ];
      } {
        inherit (r.serviceConfig) ExecStart Type Restart;
        inherit (r) bindsTo wantedBy after;
      }
    )
    (
      let
        c = eval (on { wg0 = base // { peers = [ ((builtins.head base.peers) // { endpoint = "vpn.example.org:51820"; }) ]; }; });
      in
      check "units: a refresh unit also with period 0, to fill in an endpoint that did not resolve at boot" (c.systemd.services ? "wg-exec-refresh@wg0") (toJSON (attrNames c.systemd.services))
    )
    (
      let
        c = eval (on { wg0 = base; wg1 = base // { listenPort = 51821; }; });
      in
      eq "units: two interfaces, two units and two files" [ [ "wireguard-wg0" "wireguard-wg1" ] [ "wg-exec/wg0.ron" "wg-exec/wg1.ron" ] ] [
        (attrNames c.systemd.services)
        (attrNames c.environment.etc)
      ]
    )
  ];

  # ---- the script backend's unit names, kept (configurations order themselves after them) ----
  named = peers: eval (on { wg0 = base // { inherit peers; }; });
  cN = named [ ((builtins.head base.peers) // { endpoint = "vpn.example.org:51820"; }) ];
  unitNameChecks = [
    (eq "unit names: the interface's unit is wireguard-wg0.service, the script backend's name (useWgExec = false makes the same)" [
      (attrNames off.config.systemd.services)
      [ "wireguard-wg0" ]
    ] [
      (attrNames (removeAttrs onN.config.systemd.services [ "wg-exec-refresh@wg0" ]))
      (attrNames c1.systemd.services)
    ])
    (check "unit names: no wg-exec@wg0 unit besides it (two units would run one interface)" (!(c1.systemd.services ? "wg-exec@wg0") && !(cN.systemd.services ? "wg-exec@wg0")) (toJSON (attrNames cN.systemd.services)))
    (eq "unit names: wireguard-wg0.target as in the script backend: wanted by multi-user, wants and is after the interface" {
      wantedBy = [ "multi-user.target" ];
      wants = [ "wireguard-wg0.service" ];
      after = [ "wireguard-wg0.service" ];
    } { inherit (c1.systemd.targets."wireguard-wg0") wantedBy wants after; })
    (eq "unit names: with a peer known by name the target also wants the refresh (in place of the peer units)" [ "wireguard-wg0.service" "wg-exec-refresh@wg0.service" ] cN.systemd.targets."wireguard-wg0".wants)
    (eq "unit names: stopping or restarting wireguard-wg0.target reaches the interface (PartOf)" [ "wireguard-wg0.target" ] c1.systemd.services."wireguard-wg0".partOf)
    (eq "unit names: two interfaces, two targets" [ "wireguard-wg0" "wireguard-wg1" ] (attrNames (eval (on { wg0 = base; wg1 = base // { listenPort = 51821; }; })).systemd.targets))
    (
      let
        f = import ./unit-files.nix { bin = "/usr/sbin/wg-exec"; };
        svc = f."wireguard-wg0.service";
      in
      check "unit files (what the systemd VM installs): wireguard-wg0.service runs wg-exec up/reload/down, PartOf=wireguard-wg0.target; the target wants it" (
        attrNames f == [ "wireguard-wg0.service" "wireguard-wg0.target" ]
        && all (l: hasInfix "\n${l}\n" svc) [
          "ExecStart=/usr/sbin/wg-exec up wg0"
          "ExecReload=/usr/sbin/wg-exec reload wg0"
          "ExecStop=/usr/sbin/wg-exec down wg0"
          "PartOf=wireguard-wg0.target"
          "ProtectSystem=strict"
        ]
        && hasInfix "\nWants=wireguard-wg0.service\n" f."wireguard-wg0.target"
      ) (toJSON f)
    )
    (eq "unit names: the RON says which unit applies it" true (hasInfix "// Applied by wireguard-wg0.service: `systemctl reload wireguard-wg0` after a change." etc1.text))
  ];

  # ---- kernels before 5.6: the out-of-tree module, as nixpkgs' module adds it ----
  kernelPackages = version: {
    kernel = { inherit version; };
    wireguard = "/nix/store/66666666666666666666666666666666-wireguard-${version}";
  };
  onKernel =
    version: ifc:
    (evalWith {
      wireguard = on { wg0 = ifc; };
      modules = [ { config.boot.kernelPackages = kernelPackages version; } ];
    }).config.boot;
  kernelChecks = [
    (eq "kernel 5.4: boot.extraModulePackages has the kernel's wireguard package, boot.kernelModules wireguard" [
      [ (kernelPackages "5.4.190").wireguard ]
      [ "wireguard" ]
    ] [
      (onKernel "5.4.190" base).extraModulePackages
      (onKernel "5.4.190" base).kernelModules
    ])
    (eq "kernel 4.19 with backend kernel: the out-of-tree module" [ (kernelPackages "4.19.300").wireguard ] (onKernel "4.19.300" (base // { backend = "kernel"; })).extraModulePackages)
    (eq "kernel 5.6 and 6.1: no extra module package (WireGuard is in the kernel)" [ [ ] [ ] ] [
      (onKernel "5.6.0" base).extraModulePackages
      (onKernel "6.1.55" base).extraModulePackages
    ])
    (eq "kernel 5.4 with backend userspace only: neither the module nor its package" [ [ ] [ ] ] [
      (onKernel "5.4.190" (base // { backend = "userspace"; })).extraModulePackages
      (onKernel "5.4.190" (base // { backend = "userspace"; })).kernelModules
    ])
  ];

  # ---- table "off": wg-quick's meaning (no routes), rendered as written ----
  tOff = eval (on { wg0 = base // { table = "off"; peers = [ (peer // { allowedIPs = [ "0.0.0.0/0" ]; }) ]; }; });
  tableOffChecks = [
    (check "table off: the RON says table: \"off\" (wg-exec reads it as no routes)" (hasInfix "table: \"off\"," tOff.environment.etc."wg-exec/wg0.ron".text) tOff.environment.etc."wg-exec/wg0.ron".text)
    (eq "table off: no assertion fails, and no warning about a /0 route in table main" [ [ ] [ ] ] [
      (map (a: a.message) (filter (a: !a.assertion) tOff.assertions))
      tOff.warnings
    ])
  ];

  # ---- nixos-rebuild switch: reload or restart ----
  # switch-to-configuration reloads a unit whose file differs only in X-Reload-Triggers and
  # restarts it when anything else differs (nixos/doc/manual/development/unit-handling).
  unitOf = ifc: (eval (on { wg0 = ifc; })).systemd.services."wireguard-wg0";
  decide =
    old: new:
    let
      a = unitOf old;
      b = unitOf new;
      strip = u: removeAttrs u [ "reloadTriggers" ];
    in
    if a == b then
      "nothing"
    else if strip a == strip b then
      "reload"
    else
      "restart";
  peer = builtins.head base.peers;
  switchCases = [
    [ "a peer added" "reload" (base // { peers = base.peers ++ [ { publicKey = k.c.pub; allowedIPs = [ "198.51.100.0/24" ]; } ]; }) ]
    [ "a peer removed" "reload" (base // { peers = [ ]; }) ]
    [ "a peer's endpoint changed" "reload" (base // { peers = [ (peer // { endpoint = "198.51.100.3:51820"; }) ]; }) ]
    [ "a peer's allowed IPs changed" "reload" (base // { peers = [ (peer // { allowedIPs = [ "192.0.2.128/25" ]; }) ]; }) ]
    [ "keepalive and preshared key file set" "reload" (base // { peers = [ (peer // { persistentKeepalive = 25; presharedKeyFile = env.psk.file; }) ]; }) ]
    [ "listen port, MTU, fwmark, addresses changed" "reload" (base // { listenPort = 51999; mtu = 1380; fwMark = "0x10"; ips = [ "192.0.2.9/24" ]; }) ]
    [ "table and metric changed" "reload" (base // { table = "1234"; metric = 7; }) ]
    [ "another private key file" "reload" (base // { privateKeyFile = k.b.file; }) ]
    [ "refresh periods changed" "reload" (base // { dynamicEndpointRefreshSeconds = 60; }) ]
    [ "socketNamespace set" "restart" (base // { socketNamespace = "underlay"; }) ]
    [ "interfaceNamespace set" "restart" (base // { interfaceNamespace = "tunnel"; }) ]
    [ "interfaceNamespace init" "restart" (base // { interfaceNamespace = "init"; }) ]
    [ "backend changed" "restart" (base // { backend = "userspace"; }) ]
    [ "userspace implementation changed" "restart" (base // { userspaceImplementation = "boringtun-cli"; }) ]
    [ "generatePrivateKeyFile set" "restart" (base // { generatePrivateKeyFile = true; }) ]
    [ "nothing changed" "nothing" base ]
  ];
  hooked = base // {
    preSetup = "echo a";
    postSetup = "echo b";
    preShutdown = "echo c";
    postShutdown = "echo d";
  };
  hookCases = [
    [ "preSetup changed (runs only at up)" "restart" (hooked // { preSetup = "echo A"; }) ]
    [ "postSetup changed (runs only at up)" "restart" (hooked // { postSetup = "echo B"; }) ]
    [ "preShutdown changed (recorded by reload for the next down)" "reload" (hooked // { preShutdown = "echo C"; }) ]
    [ "postShutdown changed (recorded by reload for the next down)" "reload" (hooked // { postShutdown = "echo D"; }) ]
    [ "a peer added, with hooks" "reload" (hooked // { peers = base.peers ++ [ { publicKey = k.c.pub; allowedIPs = [ ]; } ]; }) ]
  ];
  switchChecks =
    map (c: eq "switch: ${builtins.elemAt c 0} -> ${builtins.elemAt c 1}" (builtins.elemAt c 1) (decide base (builtins.elemAt c 2))) switchCases
    ++ map (c: eq "switch: ${builtins.elemAt c 0} -> ${builtins.elemAt c 1}" (builtins.elemAt c 1) (decide hooked (builtins.elemAt c 2))) hookCases;

  # ---- assertions and warnings ----
  failing = wireguard: map (a: a.message) (filter (a: !a.assertion) (evalWith { inherit wireguard; }).config.assertions);
  msg = {
    oneKey = "Either networking.wireguard.interfaces.wg0.privateKey or networking.wireguard.interfaces.wg0.privateKeyFile must be set.";
    generate = "networking.wireguard.interfaces.wg0.generatePrivateKeyFile must not be set if networking.wireguard.interfaces.wg0.privateKey is set.";
    psk = "networking.wireguard.interfaces.wg0 peer «${k.b.pub}» has both presharedKey and presharedKeyFile set, but only one can be used.";
  };
  noFile = removeAttrs base [ "privateKeyFile" ];
  assertionChecks = [
    (eq "assertions: none fail for a valid interface" [ ] (failing (on { wg0 = base; })))
    (eq "assertions: neither privateKey nor privateKeyFile (the module's message)" [ msg.oneKey ] (failing (on { wg0 = noFile; })))
    (eq "assertions: both privateKey and privateKeyFile" [ msg.oneKey ] (failing (on { wg0 = base // { privateKey = k.a.priv; }; })))
    (eq "assertions: generatePrivateKeyFile with privateKey" [ msg.generate ] (failing (on { wg0 = noFile // { privateKey = k.a.priv; generatePrivateKeyFile = true; }; })))
    (eq "assertions: presharedKey and presharedKeyFile" [ msg.psk ] (failing (on { wg0 = base // { peers = [ (peer // { presharedKey = env.psk.inline; presharedKeyFile = env.psk.file; }) ]; }; })))
    (check "assertions: type amneziawg and extraOptions are refused with wg-exec" (
      length (failing (on { wg0 = base // { type = "amneziawg"; extraOptions = { Jc = 5; }; }; })) == 2
    ) (toJSON (failing (on { wg0 = base // { type = "amneziawg"; extraOptions = { Jc = 5; }; }; }))))
    (check "assertions: two peers with one public key" (length (failing (on { wg0 = base // { peers = [ peer peer ]; }; })) == 2) (toJSON (failing (on { wg0 = base // { peers = [ peer peer ]; }; }))))
    (check "assertions: an interface name that is too long" (length (failing (on { wireguard-too-long0 = base; })) == 1) (toJSON (failing (on { wireguard-too-long0 = base; }))))
    (eq "assertions: useWgExec and useNetworkd together" [ "networking.wireguard.useWgExec and networking.wireguard.useNetworkd are two backends: enable one." ] (
      map (a: a.message) (filter (a: !a.assertion) (evalWith {
        wireguard = on { wg0 = base; } // { useNetworkd = true; };
        modules = [ { options.networking.wireguard.useNetworkd = lib.mkOption { type = lib.types.bool; default = false; }; } ];
      }).config.assertions)
    ))
    (eq "assertions: none without useWgExec (the script backend has its own)" [ ] (failing { interfaces.wg0 = noFile; }))
    (eq "warnings: none for a valid interface with key files" [ ] (eval (on { wg0 = base; })).warnings)
    (check "warnings: inline privateKey and presharedKey, and a /0 route in table main" (
      length (eval (on { wg0 = noFile // { privateKey = k.a.priv; peers = [ (peer // { presharedKey = env.psk.inline; allowedIPs = [ "0.0.0.0/0" ]; }) ]; }; })).warnings == 3
    ) (toJSON (eval (on { wg0 = noFile // { privateKey = k.a.priv; peers = [ (peer // { presharedKey = env.psk.inline; allowedIPs = [ "0.0.0.0/0" ]; }) ]; }; })).warnings))
    (check "files: an inline privateKey is in the RON (the user inlined it)" (hasInfix "private_key: \"${k.a.priv}\"," (eval (on { wg0 = noFile // { privateKey = k.a.priv; }; })).environment.etc."wg-exec/wg0.ron".text) "not found")
  ];

  # ---- the switch: useWgExec false keeps nixpkgs' script backend, true replaces it ----
  inNixos =
    useWgExec:
    evalWith {
      wireguard = {
        inherit useWgExec;
        interfaces.wg0 = base;
      };
      specialArgs.modulesPath = ./fake-modules;
    };
  off = inNixos false;
  onN = inNixos true;
  switchBackendChecks = [
    (eq "backend switch: in NixOS the module replaces nixpkgs' wireguard.nix (disabledModules)" [ "services/networking/wireguard.nix" ] off.disabledModules)
    (eq "backend switch: useWgExec = false: the script backend's units, nothing of wg-exec" [ [ "wireguard-wg0" ] { } ] [
      (attrNames off.config.systemd.services)
      off.config.environment
    ])
    (eq "backend switch: useWgExec = true: wg-exec's unit (under the script backend's name, running wg-exec) and file" [ [ "wireguard-wg0" ] "${bin} up wg0" [ "wg-exec/wg0.ron" ] ] [
      (attrNames onN.config.systemd.services)
      onN.config.systemd.services."wireguard-wg0".serviceConfig.ExecStart
      (attrNames onN.config.environment.etc)
    ])
    (eq "backend switch: enable = false: nothing at all" [ { } { } ] [
      (evalWith { wireguard = on { wg0 = base; } // { enable = false; }; }).config.systemd
      (evalWith { wireguard = on { wg0 = base; } // { enable = false; }; }).config.environment
    ])
  ];
in
optionChecks ++ unitChecks ++ unitNameChecks ++ kernelChecks ++ tableOffChecks ++ switchChecks ++ assertionChecks ++ switchBackendChecks
