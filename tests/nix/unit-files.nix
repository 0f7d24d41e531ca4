# The units nix/render.nix defines for one interface (as the module hands them to NixOS's
# systemd.services and systemd.targets), written out as unit files the way NixOS writes them
# (nixos/lib/systemd-lib.nix: [Unit] from description, documentation, the dependency lists,
# unitConfig and the X-Reload-/X-Restart-Triggers; [Service] from serviceConfig, a list value
# as one line per element, booleans as true/false; `path` as Environment=PATH). For the systemd
# VM test (scripts/vm-systemd/run): the guest installs them in /etc/systemd/system and drives
# them with systemctl. Left out, as the guest starts the units itself: the wantedBy symlinks
# NixOS makes (a .wants directory per entry), and NixOS's default PATH for units without `path`.
#
#   nix-instantiate --eval --strict --json tests/nix/unit-files.nix --argstr bin /usr/sbin/wg-exec
#     -> { "wireguard-wg0.service": "...", "wireguard-wg0.target": "...", ... }
{
  bin,
  name ? "wg0",
  # A host name here adds the refresh unit (tests/nix/run.sh compares it with the shipped one).
  endpoint ? "203.0.113.2:51820",
}:
let
  inherit (builtins)
    attrNames
    concatLists
    concatMap
    concatStringsSep
    isBool
    isList
    listToAttrs
    map
    toString
    ;
  render = import ../../nix/render.nix;

  # An interface like the guest's: no hooks (the sandboxed unit, as most users get it), the
  # peer's endpoint an address (no refresh unit: the guest's package has its own
  # wg-exec-refresh@.service, bound to wg-exec@wg0, which a rendered instance would replace).
  cfg = {
    ips = [ "192.0.2.1/24" ];
    privateKeyFile = "/etc/wg-exec/keys/${name}.key";
    listenPort = 51820;
    peers = [
      {
        publicKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
        allowedIPs = [ "192.0.2.2/32" ];
        inherit endpoint;
      }
    ];
  };

  value = v: if isBool v then (if v then "true" else "false") else toString v;
  lines = k: v: map (x: "${k}=${value x}") (if isList v then v else [ v ]);
  section = title: attrs: "[${title}]\n" + concatStringsSep "" (map (l: l + "\n") (concatMap (k: lines k attrs.${k}) (attrNames attrs)));
  pathEnv = ps: if ps == [ ] then [ ] else [ "\"PATH=${concatStringsSep ":" (concatMap (p: [ "${p}/bin" "${p}/sbin" ]) ps)}\"" ];

  unitSection =
    u:
    let
      list = k: key: if (u.${k} or [ ]) == [ ] then { } else { ${key} = concatStringsSep " " u.${k}; };
    in
    { Description = u.description; }
    // list "documentation" "Documentation"
    // list "after" "After"
    // list "before" "Before"
    // list "wants" "Wants"
    // list "requires" "Requires"
    // list "bindsTo" "BindsTo"
    // list "partOf" "PartOf"
    // (u.unitConfig or { })
    // (if (u.reloadTriggers or [ ]) == [ ] then { } else { X-Reload-Triggers = u.reloadTriggers; })
    // (if (u.restartTriggers or [ ]) == [ ] then { } else { X-Restart-Triggers = u.restartTriggers; });

  serviceText =
    u:
    section "Unit" (unitSection u)
    + "\n"
    + section "Service" (u.serviceConfig // (if pathEnv (u.path or [ ]) == [ ] then { } else { Environment = pathEnv u.path; }));

  services = render.units { inherit name cfg bin; };
  targets = render.targets { inherit name cfg; };
in
listToAttrs (
  map (n: {
    name = "${n}.service";
    value = serviceText services.${n};
  }) (attrNames services)
  ++ map (n: {
    name = "${n}.target";
    value = section "Unit" (unitSection targets.${n});
  }) (attrNames targets)
)
