# The wg-exec package, built from this repository (nix/module.nix uses it when nixpkgs has no
# pkgs.wg-exec):  pkgs.callPackage ./nix/package.nix { }
#
# Not built by the offline tests (they have no nixpkgs): see tests/nix/README.md.
{
  lib,
  rustPlatform,
}:
let
  root = ../.;
  # The sources cargo needs (tests/ and benches/ too: Cargo.toml names targets there); not
  # target/ or the fuzz corpus.
  keep =
    path: type:
    let
      rel = lib.removePrefix (toString root + "/") (toString path);
      top = builtins.head (lib.splitString "/" rel);
    in
    builtins.elem top [
      "Cargo.toml"
      "Cargo.lock"
      "build.rs"
      "src"
      "steps"
      "benches"
      "tests"
      "systemd"
      "examples"
    ];
  cargoToml = builtins.fromTOML (builtins.readFile ../Cargo.toml);
in
rustPlatform.buildRustPackage {
  pname = "wg-exec";
  inherit (cargoToml.package) version;
  src = lib.cleanSourceWith {
    src = root;
    filter = keep;
    name = "wg-exec-source";
  };
  cargoLock.lockFile = ../Cargo.lock;

  # The tests need root, network namespaces and wireguard-go: scripts/test runs them.
  doCheck = false;

  postInstall = ''
    # Man pages and completions from build.rs (the clap definitions).
    out_dir=$(dirname "$(find target -path '*/build/wg-exec-*/out/wg-exec.8' | head -n 1)")
    install -Dm0644 -t $out/share/man/man8 "$out_dir"/*.8
    install -Dm0644 "$out_dir/wg-exec.bash" $out/share/bash-completion/completions/wg-exec
    install -Dm0644 "$out_dir/_wg-exec" $out/share/zsh/site-functions/_wg-exec
    install -Dm0644 "$out_dir/wg-exec.fish" $out/share/fish/vendor_completions.d/wg-exec.fish
    install -Dm0644 -t $out/share/doc/wg-exec/examples examples/wg0.ron
  '';

  meta = {
    description = "Bring one WireGuard interface up or down from a declarative RON description, transactionally";
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "wg-exec";
    platforms = lib.platforms.linux;
  };
}
