# nix/module.nix with nixpkgs' real lib.evalModules (where nixpkgs is at hand; the offline
# tests use ./lib-stub.nix instead). Not run here: this machine has no nixpkgs.
#
#   nix-instantiate --eval --strict --json tests/nix/real-lib.nix -I nixpkgs=/path/to/nixpkgs
#   nix-instantiate --eval --strict --json tests/nix/real-lib.nix --arg nixpkgs /path/to/nixpkgs -A units
#
# It declares, loosely, the NixOS options the module defines (a real NixOS has them) and
# returns what the module made of one interface.
{
  nixpkgs ? <nixpkgs>,
  pkgs ? import nixpkgs { },
  lib ? pkgs.lib,
}:
let
  nixosOptions =
    { lib, ... }:
    {
      options = {
        assertions = lib.mkOption {
          type = lib.types.listOf lib.types.unspecified;
          default = [ ];
        };
        warnings = lib.mkOption {
          type = lib.types.listOf lib.types.str;
          default = [ ];
        };
        environment.etc = lib.mkOption {
          type = lib.types.attrsOf lib.types.anything;
          default = { };
        };
        environment.systemPackages = lib.mkOption {
          type = lib.types.listOf lib.types.package;
          default = [ ];
        };
        systemd.services = lib.mkOption {
          type = lib.types.attrsOf lib.types.anything;
          default = { };
        };
        systemd.targets = lib.mkOption {
          type = lib.types.attrsOf lib.types.anything;
          default = { };
        };
        boot.kernelModules = lib.mkOption {
          type = lib.types.listOf lib.types.str;
          default = [ ];
        };
        boot.extraModulePackages = lib.mkOption {
          type = lib.types.listOf lib.types.anything;
          default = [ ];
        };
      };
    };
  eval = lib.evalModules {
    modules = [
      ../../nix/module.nix
      nixosOptions
      {
        # A stand-in package, so that nothing is built for an evaluation.
        _module.args.pkgs = pkgs // {
          wg-exec = pkgs.writeShellScriptBin "wg-exec" "exit 0";
        };
        networking.wireguard = {
          useWgExec = true;
          interfaces.wg0 = {
            ips = [ "192.0.2.1/24" ];
            privateKeyFile = "/etc/wireguard/wg0.key";
            generatePrivateKeyFile = true;
            peers = [
              {
                publicKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
                allowedIPs = [ "192.0.2.0/25" ];
                endpoint = "demo.wireguard.io:12913";
                dynamicEndpointRefreshSeconds = 30;
              }
            ];
          };
        };
      }
    ];
  };
  c = eval.config;
in
{
  ron = c.environment.etc."wg-exec/wg0.ron".text;
  mode = c.environment.etc."wg-exec/wg0.ron".mode;
  units = lib.mapAttrs (_: u: removeAttrs u [ "path" ]) c.systemd.services;
  inherit (c.systemd) targets;
  inherit (c.boot) extraModulePackages;
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  inherit (c) warnings;
  # The defaults, as the real module system computes them.
  interface = removeAttrs c.networking.wireguard.interfaces.wg0 [ "_module" "peers" ];
  peer = removeAttrs (builtins.head c.networking.wireguard.interfaces.wg0.peers) [ "_module" ];
}
