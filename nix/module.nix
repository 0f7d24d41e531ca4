# wg-exec as the backend of NixOS's networking.wireguard.
#
#   imports = [ /path/to/wg-exec/nix/module.nix ];
#   networking.wireguard.useWgExec = true;
#
# The options are those of nixpkgs' networking.wireguard (same names, types, defaults and
# meaning), declared here because this module takes the place of
# nixos/modules/services/networking/wireguard.nix: with useWgExec = false (the default) that
# file's script backend runs unchanged; with useWgExec = true wg-exec does, from
# /etc/wg-exec/NAME.ron and wireguard-NAME.service (the script backend's unit name, kept).
#
# This file only declares options and hands their values to ./render.nix (builtins only).
{
  config,
  lib,
  pkgs,
  ...
}@args:
let
  inherit (lib) mkOption mkIf types literalExpression;

  render = import ./render.nix;
  d = render.interfaceDefaults;
  pd = render.peerDefaults;

  cfg = config.networking.wireguard;

  # In NixOS (modulesPath is one of its special arguments) nixpkgs' own wireguard.nix is
  # replaced by this file; its implementation is kept as the script backend, for
  # useWgExec = false. Elsewhere (a bare lib.evalModules, the tests) there is nothing to replace.
  inNixos = args ? modulesPath;
  upstreamFile = "services/networking/wireguard.nix";
  scriptBackend =
    {
      config,
      lib,
      pkgs,
      options,
      ...
    }@a:
    let
      upstream = import (args.modulesPath + "/${upstreamFile}") a;
    in
    {
      _file = "${toString args.modulesPath}/${upstreamFile} (the script backend, via wg-exec's nix/module.nix)";
      config = lib.mkIf (!config.networking.wireguard.useWgExec) (upstream.config or { });
    };

  # The module's hook type: a string, or a list of strings joined with newlines.
  hookLines = types.coercedTo (types.listOf types.str) (builtins.concatStringsSep "\n") types.lines;

  peerOpts =
    { config, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = render.escapeKey config.publicKey;
          defaultText = literalExpression "publicKey (escaped for a unit name)";
          example = "bernd";
          description = "Name of the peer: the script backend derives its unit's name from it; wg-exec uses it in messages. Unique within the interface.";
        };
        publicKey = mkOption {
          type = types.singleLineStr;
          example = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
          description = "The peer's base64 public key.";
        };
        presharedKey = mkOption {
          type = with types; nullOr str;
          default = pd.presharedKey;
          example = "rVXs/Ni9tu3oDBLS4hOyAUAa1qTWVA3loR8eL20os3I=";
          description = ''
            Base64 preshared key (`wg genpsk`), optional: an extra layer of symmetric
            cryptography. Written into the generated configuration, which is built in the
            world-readable Nix store: prefer presharedKeyFile.
          '';
        };
        presharedKeyFile = mkOption {
          type = with types; nullOr str;
          default = pd.presharedKeyFile;
          example = "/private/wireguard_psk";
          description = "File holding the base64 preshared key (`wg genpsk`), read when the interface comes up. At most one of presharedKey and presharedKeyFile.";
        };
        allowedIPs = mkOption {
          type = with types; listOf str;
          example = [
            "192.0.2.3/32"
            "2001:db8:1::/48"
          ];
          description = ''
            Addresses with prefix length (IPv4 or IPv6) that this peer may send from and that
            traffic for it is sent to; 0.0.0.0/0 and ::/0 match everything.
          '';
        };
        endpoint = mkOption {
          type = with types; nullOr str;
          default = pd.endpoint;
          example = "demo.wireguard.io:12913";
          description = ''
            The peer's address and port: `host:port`, `ipv4:port` or `[ipv6]:port`. A host name
            is resolved when the interface comes up (with wg-exec: where the UDP socket is,
            i.e. in socketNamespace); to follow later DNS changes set
            dynamicEndpointRefreshSeconds.
          '';
        };
        dynamicEndpointRefreshSeconds = mkOption {
          type = with types; nullOr int;
          default = pd.dynamicEndpointRefreshSeconds;
          defaultText = literalExpression "config.networking.wireguard.interfaces.<name>.dynamicEndpointRefreshSeconds";
          example = 5;
          description = "Re-resolve this peer's endpoint host name every this many seconds; 0 disables it; null takes the interface's value.";
        };
        dynamicEndpointRefreshRestartSeconds = mkOption {
          type = with types; nullOr ints.unsigned;
          default = pd.dynamicEndpointRefreshRestartSeconds;
          example = 5;
          description = "After a failed refresh (the script backend: its refresh service exited; wg-exec: a resolver failure), try again after this many seconds; null = the refresh period.";
        };
        persistentKeepalive = mkOption {
          type = with types; nullOr int;
          default = pd.persistentKeepalive;
          example = 25;
          description = ''
            Off by default. Seconds (1-65535) between authenticated empty packets sent to the
            peer to keep a stateful firewall or NAT mapping open, e.g. 25 for an interface
            behind NAT that mostly receives.
          '';
        };
      };
    };

  interfaceOpts =
    { ... }:
    {
      options = {
        ips = mkOption {
          type = with types; listOf str;
          default = d.ips;
          example = [ "192.0.2.1/24" ];
          description = "The IP addresses (with prefix length) of the interface.";
        };
        privateKey = mkOption {
          type = with types; nullOr str;
          default = d.privateKey;
          example = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
          description = ''
            Base64 private key (`wg genkey`). It ends up in the world-readable Nix store:
            prefer privateKeyFile.
          '';
        };
        privateKeyFile = mkOption {
          type = with types; nullOr str;
          default = d.privateKeyFile;
          example = "/private/wireguard_key";
          description = "File holding the base64 private key (`wg genkey`), read when the interface comes up. Exactly one of privateKey and privateKeyFile.";
        };
        generatePrivateKeyFile = mkOption {
          type = types.bool;
          default = d.generatePrivateKeyFile;
          description = ''
            Create privateKeyFile with a fresh key (`wg genkey`) when it does not exist: its
            directory 0755 if missing (an existing one keeps its mode), the file 0600, written
            atomically and never overwritten.
          '';
        };
        listenPort = mkOption {
          type = with types; nullOr int;
          default = d.listenPort;
          example = 51820;
          description = "UDP port to listen on (16 bits); null lets the kernel choose one.";
        };
        preSetup = mkOption {
          type = hookLines;
          default = d.preSetup;
          example = literalExpression ''"''${pkgs.iproute2}/bin/ip netns add foo"'';
          description = "Commands run at the start of the interface setup.";
        };
        postSetup = mkOption {
          type = hookLines;
          default = d.postSetup;
          example = literalExpression ''"printf 'nameserver 192.0.2.53' | ''${pkgs.openresolv}/bin/resolvconf -a wg0 -m 0"'';
          description = "Commands run at the end of the interface setup.";
        };
        preShutdown = mkOption {
          type = hookLines;
          default = d.preShutdown;
          example = literalExpression ''"''${pkgs.iproute2}/bin/ip netns del foo"'';
          description = "Commands run before the interface is shut down.";
        };
        postShutdown = mkOption {
          type = hookLines;
          default = d.postShutdown;
          example = literalExpression ''"''${pkgs.openresolv}/bin/resolvconf -d wg0"'';
          description = "Commands run after the interface was shut down.";
        };
        table = mkOption {
          type = types.str;
          default = d.table;
          description = ''
            Routing table for the routes of the peers' allowed IPs (policy routing with
            `ip rule`, VRFs): a number or a name from /etc/iproute2/rt_tables. Default "main".
            "off": no routes at all (wg-quick's meaning; the same as allowedIPsAsRoutes = false).
          '';
        };
        peers = mkOption {
          type = with types; listOf (submodule peerOpts);
          default = d.peers;
          description = "The interface's peers.";
        };
        allowedIPsAsRoutes = mkOption {
          type = types.bool;
          default = d.allowedIPsAsRoutes;
          example = false;
          description = "Whether to add a route through the interface for each allowed IP of each peer.";
        };
        socketNamespace = mkOption {
          type = with types; nullOr str;
          default = d.socketNamespace;
          example = "container";
          description = ''
            An existing network namespace in which the interface is created and which keeps
            its UDP socket even when the interface moves (interfaceNamespace). null: the init
            namespace. See https://www.wireguard.com/netns/.
          '';
        };
        interfaceNamespace = mkOption {
          type = with types; nullOr str;
          default = d.interfaceNamespace;
          example = "init";
          description = ''
            An existing network namespace the interface is moved to; "init" is the init
            namespace. null: the interface is not moved. See https://www.wireguard.com/netns/.
          '';
        };
        fwMark = mkOption {
          type = with types; nullOr str;
          default = d.fwMark;
          example = "0x6e6978";
          description = ''
            Firewall mark for the tunnel's own (encrypted) packets, for firewall rules or
            policy routing, e.g. to route them differently when all traffic goes through the
            tunnel.
          '';
        };
        mtu = mkOption {
          type = with types; nullOr int;
          default = d.mtu;
          example = 1280;
          description = ''
            The interface's MTU in bytes. WireGuard adds up to 80 bytes, hence the usual
            1420 (1500 - 80); lower it when the network underneath has a smaller MTU.
          '';
        };
        metric = mkOption {
          type = with types; nullOr int;
          default = d.metric;
          example = 700;
          description = "Metric of the routes of the peers' allowed IPs.";
        };
        dynamicEndpointRefreshSeconds = mkOption {
          type = types.int;
          default = d.dynamicEndpointRefreshSeconds;
          example = 300;
          description = ''
            Re-resolve the peers' endpoint host names every this many seconds, to follow DNS
            changes; a peer may override it. 0 disables periodic refresh.
          '';
        };
        type = mkOption {
          type = types.enum [
            "wireguard"
            "amneziawg"
          ];
          default = d.type;
          example = "amneziawg";
          description = ''Kind of interface: "wireguard" or "amneziawg" (the script backend only; wg-exec supports "wireguard").'';
        };
        extraOptions = mkOption {
          type =
            with types;
            attrsOf (oneOf [
              str
              int
            ]);
          default = d.extraOptions;
          example = {
            Jc = 5;
            Jmin = 10;
          };
          description = "Extra device options for the interface (AmneziaWG's); the script backend only.";
        };
        # wg-exec only.
        backend = mkOption {
          type = types.enum [
            "auto"
            "kernel"
            "userspace"
          ];
          default = d.backend;
          description = ''
            (wg-exec only) "auto": the kernel's WireGuard when the kernel has it, else
            userspaceImplementation; "kernel" or "userspace" to insist on one.
          '';
        };
        userspaceImplementation = mkOption {
          type = types.str;
          default = "${pkgs.wireguard-go}/bin/wireguard-go";
          defaultText = literalExpression ''"''${pkgs.wireguard-go}/bin/wireguard-go"'';
          description = "(wg-exec only) The userspace WireGuard program (wireguard-go or boringtun-cli), by absolute path.";
        };
      };
    };

  # Whether some interface may use the kernel's WireGuard (backend "auto" or "kernel").
  usingKernel = builtins.any (i: i.backend != "userspace") (builtins.attrValues cfg.interfaces);
  # NixOS's kernel packages (absent outside NixOS, e.g. a bare lib.evalModules).
  kernelPackages = config.boot.kernelPackages or null;
  oldKernel = kernelPackages != null && builtins.compareVersions kernelPackages.kernel.version "5.6" < 0;

  rendered = render.all {
    inherit (cfg) interfaces;
    bin = "${cfg.wgExecPackage}/bin/wg-exec";
    # What the script backend's units had on their PATH, for the hooks.
    path = [
      pkgs.kmod
      pkgs.iproute2
      pkgs.wireguard-tools
    ];
    mkdir = "${pkgs.coreutils}/bin/mkdir";
  };
in
{
  disabledModules = lib.optional inNixos upstreamFile;
  imports = lib.optional inNixos scriptBackend;

  options.networking.wireguard = {
    enable = mkOption {
      type = types.bool;
      default = cfg.interfaces != { };
      defaultText = literalExpression "config.networking.wireguard.interfaces != { }";
      example = true;
      description = "Whether to enable WireGuard (the script backend, or wg-exec with useWgExec, or networkd with useNetworkd).";
    };
    interfaces = mkOption {
      type = with types; attrsOf (submodule interfaceOpts);
      default = { };
      example = {
        wg0 = {
          ips = [ "192.0.2.4/24" ];
          privateKeyFile = "/etc/wireguard/wg0.key";
          generatePrivateKeyFile = true;
          peers = [
            {
              allowedIPs = [ "192.0.2.1/32" ];
              publicKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
              endpoint = "demo.wireguard.io:12913";
            }
          ];
        };
      };
      description = "WireGuard interfaces.";
    };
    useWgExec = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run the interfaces with wg-exec instead of the script backend: one unit
        wireguard-NAME.service per interface (the script backend's name, and its
        wireguard-NAME.target, are kept, so units ordered after them keep working), running
        `wg-exec up/reload/down NAME` on /etc/wg-exec/NAME.ron (0600), brought up as one
        transaction (rolled back on failure), changed in place by `systemctl reload` (which
        nixos-rebuild switch uses for a change that reload can apply, e.g. the peers), and
        wg-exec-refresh@NAME.service for peers known by host name. The per-peer units
        (wireguard-NAME-peer-PEER[-refresh].service) do not exist: order after
        wireguard-NAME.service or wireguard-NAME.target instead.
      '';
    };
    wgExecPackage = mkOption {
      type = types.package;
      default = pkgs.wg-exec or (pkgs.callPackage ./package.nix { });
      defaultText = literalExpression "pkgs.wg-exec or (pkgs.callPackage ./package.nix { })";
      description = "The wg-exec package.";
    };
  };

  config = mkIf (cfg.enable && cfg.useWgExec) {
    assertions = rendered.assertions ++ [
      {
        assertion = !(cfg.useNetworkd or false);
        message = "networking.wireguard.useWgExec and networking.wireguard.useNetworkd are two backends: enable one.";
      }
    ];
    warnings = rendered.warnings;
    environment.etc = rendered.etc;
    systemd.services = rendered.services;
    systemd.targets = rendered.targets;
    environment.systemPackages = [
      cfg.wgExecPackage
      pkgs.wireguard-tools
    ];
    # Loaded at boot, as the module does: wg-exec's own modprobe step tolerates failure.
    boot.kernelModules = lib.optional usingKernel "wireguard";
    # Kernels before 5.6 have no WireGuard of their own: the out-of-tree module, as nixpkgs'
    # module adds it (without it the module fails to load at boot and backend "auto" would
    # fall back to userspace without a word).
    boot.extraModulePackages = lib.optional (usingKernel && oldKernel) kernelPackages.wireguard;
  };
}
