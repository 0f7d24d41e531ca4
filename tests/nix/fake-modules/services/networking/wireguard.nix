# A stand-in for nixpkgs' nixos/modules/services/networking/wireguard.nix in the offline tests:
# it declares the same top-level options (which nix/module.nix must drop, or the stub evaluator
# reports them as declared twice) and, like the real file, defines the script backend's units.
{ config, lib, pkgs, ... }:
let
  cfg = config.networking.wireguard;
in
{
  options.networking.wireguard = {
    enable = lib.mkOption { type = lib.types.bool; default = false; };
    interfaces = lib.mkOption { type = lib.types.attrsOf lib.types.str; default = { }; };
  };
  config = lib.mkIf cfg.enable {
    systemd.services = builtins.listToAttrs (
      map (name: {
        name = "wireguard-${name}";
        value = {
          script = "ip link add dev ${name} type wireguard";
        };
      }) (builtins.attrNames cfg.interfaces)
    );
  };
}
