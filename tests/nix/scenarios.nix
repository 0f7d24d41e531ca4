# The configurations the tests render: the module's own VM test scenarios (nixos/tests/wireguard:
# basic, namespaces, generated, dynamic-refresh; addresses moved to the documentation ranges),
# every option set, hook strings that must survive, and the README's example.
#
# env (written by run.sh): dir (a scratch directory), keys.{a,b,c,d}.{priv,pub,file} (from
# `wg genkey`), psk.{file,inline}, ns.{s,i} (namespaces run.sh created), ns.missing (a name that
# does not exist), gen.{"1","2"} (public keys of the generated keys, null before stage 2).
#
# Each scenario: id (file name), iface, cfg (option values; defaults filled by render.nix),
# stage (1, or 2 after the generated keys exist), check ("valid", "invalid" or "skip": the
# expected `wg-exec check` verdict), and for "invalid" the text its error must contain.
env:
let
  inherit (env) keys ns dir;
  k = keys;
  s = ns.s;
  i = ns.i;

  # nixos/tests/wireguard/namespaces.nix: one node config, four placements.
  nsNode = extra: {
    listenPort = 12345;
    ips = [ "192.0.2.1/24" ];
    privateKeyFile = "${dir}/gen-ns/etc/wireguard/private";
    generatePrivateKeyFile = true;
  } // extra;

  # nixos/tests/wireguard/generated.nix: two hosts with generated keys, then peers keyed by them.
  genHost = n: other: peers: {
    ips = [ "192.0.2.${n}/24" ];
    listenPort = 12345;
    privateKeyFile = "${dir}/gen-${n}/etc/wireguard/private";
    generatePrivateKeyFile = true;
    inherit peers;
  };
  genPeer = other: [
    {
      publicKey = env.gen.${other};
      allowedIPs = [ "192.0.2.${other}/32" ];
      endpoint = "198.51.100.${other}:12345";
      persistentKeepalive = 1;
    }
  ];

  # Hook text with every kind of character that quoting could break.
  nasty = [
    ''echo "double quotes" 'single quotes' `backticks` $DEVICE ''${HOME} $((1+1))''
    ''printf '%s\n' 'a\nb' "C:\\path\\" \\ \''
    "tab\there and a trailing space "
    "carriage\rreturn"
    (builtins.fromJSON ''"control characters: \u0001 \u0007 \u001b[0m \u007f"'')
    "non-ASCII: Grüße, ĳ, Ωmega, ✓, 日本語, 😀"
    ''RON-looking text: ), ], "), /* not a comment */ // nor this, \u{41}, r#"raw"#''
    ''a line that ends in a backslash \''
    ""
    "    indented, after an empty line"
  ];
in
[
  # ---- basic.nix: two hosts, IPv4 + IPv6, one side with 0.0.0.0/0 + ::/0 and no routes ----
  {
    id = "basic-peer0";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = {
      ips = [
        "192.0.2.1/32"
        "2001:db8::1/128"
      ];
      listenPort = 23542;
      privateKey = k.a.priv;
      peers = [
        {
          allowedIPs = [
            "192.0.2.2/32"
            "2001:db8::2/128"
          ];
          publicKey = k.b.pub;
        }
      ];
    };
  }
  {
    id = "basic-peer1";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = {
      ips = [
        "192.0.2.2/32"
        "2001:db8::2/128"
      ];
      listenPort = 23542;
      allowedIPsAsRoutes = false;
      privateKey = k.b.priv;
      peers = [
        {
          allowedIPs = [
            "0.0.0.0/0"
            "::/0"
          ];
          endpoint = "198.51.100.1:23542";
          persistentKeepalive = 25;
          publicKey = k.a.pub;
        }
      ];
      postSetup = ''
        ip route replace 192.0.2.1/32 dev wg0
        ip route replace 2001:db8::1/128 dev wg0
      '';
    };
  }

  # ---- namespaces.nix (the namespaces exist: run.sh made them; see ns-made-by-presetup) ----
  {
    id = "ns-socket";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = nsNode {
      preSetup = ''
        ip netns add ${s}
      '';
      socketNamespace = s;
    };
  }
  {
    id = "ns-interface";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = nsNode {
      preSetup = ''
        ip netns add ${i}
      '';
      mtu = 1280;
      interfaceNamespace = i;
    };
  }
  {
    id = "ns-both";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = nsNode {
      preSetup = ''
        ip netns add ${s}
        ip netns add ${i}
      '';
      socketNamespace = s;
      interfaceNamespace = i;
    };
  }
  {
    id = "ns-socket-init";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = nsNode {
      preSetup = ''
        ip netns add ${s}
      '';
      socketNamespace = s;
      interfaceNamespace = "init";
    };
  }
  # As the VM test has it: the namespace does not exist before preSetup makes it. wg-exec
  # says so at check and finds it when a step needs it (see differences.md, D10).
  {
    id = "ns-made-by-presetup";
    iface = "wgxnix0";
    stage = 1;
    check = "later";
    error = "network namespace `${ns.missing}` does not exist yet";
    absent = "/run/netns/${ns.missing}";
    cfg = nsNode {
      preSetup = ''
        ip netns add ${ns.missing}
      '';
      socketNamespace = ns.missing;
    };
  }

  # The same for a key file that preSetup makes (e.g. copied from a secret store).
  {
    id = "key-made-by-presetup";
    iface = "wgxnix1";
    stage = 1;
    check = "later";
    error = "";
    absent = "${dir}/later/private.key";
    # No namespace option: the link is born where wg-exec runs, so it runs in a test namespace.
    inNs = true;
    cfg = {
      ips = [ "192.0.2.1/24" ];
      privateKeyFile = "${dir}/later/private.key";
      preSetup = ''
        mkdir -p ${dir}/later
        (umask 077; wg genkey > ${dir}/later/private.key)
      '';
    };
  }

  # ---- generated.nix: generated keys, then peers keyed by their public keys ----
  {
    id = "generated-peer1";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = genHost "1" "2" [ ];
  }
  {
    id = "generated-peer2";
    iface = "wg0";
    stage = 1;
    check = "valid";
    cfg = genHost "2" "1" [ ];
  }
  {
    id = "generated-peer1-keyed";
    iface = "wg0";
    stage = 2;
    check = "valid";
    cfg = genHost "1" "2" (genPeer "2");
  }
  {
    id = "generated-peer2-keyed";
    iface = "wg0";
    stage = 2;
    check = "valid";
    cfg = genHost "2" "1" (genPeer "1");
  }

  # ---- dynamic-refresh.nix: the client follows the server's host name every 2 s ----
  {
    id = "refresh-server";
    iface = "wg0";
    stage = 1;
    check = "valid";
    refresh = false;
    cfg = {
      ips = [ "192.0.2.1/32" ];
      listenPort = 23542;
      privateKeyFile = k.c.file;
      peers = [
        {
          allowedIPs = [ "192.0.2.2/32" ];
          publicKey = k.d.pub;
        }
      ];
    };
  }
  {
    id = "refresh-client";
    iface = "wg0";
    stage = 1;
    check = "valid";
    refresh = true;
    cfg = {
      ips = [ "192.0.2.2/32" ];
      privateKeyFile = k.d.file;
      dynamicEndpointRefreshSeconds = 2;
      peers = [
        {
          allowedIPs = [
            "0.0.0.0/0"
            "::/0"
          ];
          endpoint = "server:23542";
          publicKey = k.c.pub;
        }
      ];
    };
  }

  # ---- every option, twice (the two ways of giving the private key) ----
  {
    id = "all-options-file";
    iface = "wgall0";
    stage = 1;
    check = "valid";
    refresh = true;
    # What --print cannot show: the refresh periods, names, the userspace program.
    ronHas = [
      "    dynamic_endpoint_refresh_seconds: 30,\n"
      "    userspace_implementation: \"wireguard-go\",\n"
      "            name: \"alpha\",\n"
      "            dynamic_endpoint_refresh_seconds: 5,\n            dynamic_endpoint_refresh_restart_seconds: 10,\n"
      "            dynamic_endpoint_refresh_seconds: 0,\n            persistent_keepalive: 0,\n"
    ];
    cfg = {
      ips = [
        "192.0.2.1/24"
        "2001:db8::1/64"
      ];
      privateKeyFile = k.a.file;
      generatePrivateKeyFile = true;
      listenPort = 51820;
      preSetup = [
        "echo pre-setup $DEVICE"
        "true"
      ];
      postSetup = "echo post-setup $DEVICE";
      preShutdown = ''
        echo pre-shutdown $DEVICE
      '';
      postShutdown = [ "echo post-shutdown $DEVICE" ];
      table = "1234";
      allowedIPsAsRoutes = true;
      socketNamespace = s;
      interfaceNamespace = i;
      fwMark = "0x6e6978";
      mtu = 1420;
      metric = 50;
      dynamicEndpointRefreshSeconds = 30;
      type = "wireguard";
      extraOptions = { };
      backend = "auto";
      userspaceImplementation = "wireguard-go";
      peers = [
        {
          name = "alpha";
          publicKey = k.b.pub;
          presharedKeyFile = env.psk.file;
          allowedIPs = [
            "192.0.2.0/25"
            "2001:db8:1::/48"
          ];
          endpoint = "vpn.example.org:51820";
          dynamicEndpointRefreshSeconds = 5;
          dynamicEndpointRefreshRestartSeconds = 10;
          persistentKeepalive = 25;
        }
        {
          publicKey = k.c.pub;
          presharedKey = env.psk.inline;
          allowedIPs = [ "198.51.100.0/24" ];
          endpoint = "[2001:db8::7]:51821";
          dynamicEndpointRefreshSeconds = 0;
          persistentKeepalive = 0;
        }
        {
          publicKey = k.d.pub;
          allowedIPs = [ "203.0.113.7/32" ];
          endpoint = "203.0.113.7:51820";
        }
      ];
    };
  }
  {
    id = "all-options-inline";
    iface = "wgall1";
    stage = 1;
    check = "valid";
    refresh = false;
    ronHas = [
      "    backend: Kernel,\n"
      "    dynamic_endpoint_refresh_seconds: 0,\n"
      "            name: \"no-endpoint\",\n"
      "            dynamic_endpoint_refresh_seconds: 60,\n"
    ];
    cfg = {
      ips = [ "198.18.0.1/15" ];
      privateKey = k.b.priv;
      listenPort = 0;
      table = "main";
      allowedIPsAsRoutes = false;
      socketNamespace = s;
      interfaceNamespace = "init";
      fwMark = "7";
      mtu = 1280;
      metric = 0;
      dynamicEndpointRefreshSeconds = 0;
      backend = "kernel";
      peers = [
        {
          publicKey = k.a.pub;
          allowedIPs = [ ];
          endpoint = "198.51.100.9:1";
          dynamicEndpointRefreshSeconds = 60;
        }
        {
          name = "no-endpoint";
          publicKey = k.d.pub;
          allowedIPs = [
            "0.0.0.0/0"
            "::/0"
          ];
        }
      ];
    };
  }

  # ---- strings that must survive RON and come back exactly ----
  {
    id = "hook-strings";
    iface = "wgstr0";
    stage = 1;
    check = "valid";
    ronHas = [ "            name: \"Grüße \\\"quoted\\\" \\\\ peer\",\n" ];
    cfg = {
      privateKeyFile = k.a.file;
      preSetup = nasty;
      postSetup = builtins.concatStringsSep "\n" nasty + "\n";
      preShutdown = [ "echo 'one line' \"only\" \\ ü" ];
      postShutdown = builtins.concatStringsSep "\n" (map (l: "# ${l}") nasty);
      peers = [
        {
          name = "Grüße \"quoted\" \\ peer";
          publicKey = k.b.pub;
          allowedIPs = [ "192.0.2.0/24" ];
        }
      ];
    };
  }

  # ---- table = "off": wg-quick's meaning, no routes (tests/nix/table-off.ron says it with
  # allowed_ips_as_routes: false); wg-exec check accepts it ----
  {
    id = "table-off";
    iface = "wg0";
    stage = 1;
    check = "valid";
    sameAs = "tests/nix/table-off.ron";
    cfg = {
      ips = [ "192.0.2.1/24" ];
      privateKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
      table = "off";
      peers = [
        {
          publicKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
          allowedIPs = [
            "192.0.2.0/25"
            "0.0.0.0/0"
          ];
          endpoint = "198.51.100.2:51820";
        }
      ];
    };
  }

  # ---- the README's example (examples/wg0.ron), as module options ----
  {
    id = "readme-example";
    iface = "wg0";
    stage = 1;
    check = "skip";
    sameAs = "examples/wg0.ron";
    cfg = {
      ips = [
        "192.0.2.1/24"
        "2001:db8::1/64"
      ];
      privateKeyFile = "/etc/wg-exec/keys/wg0.key";
      generatePrivateKeyFile = true;
      listenPort = 51820;
      mtu = 1420;
      fwMark = "0x6e6978";
      table = "main";
      metric = 50;
      socketNamespace = "underlay";
      interfaceNamespace = "tunnel";
      preSetup = [ "echo starting $DEVICE" ];
      postShutdown = "echo stopped $DEVICE";
      peers = [
        {
          publicKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
          presharedKeyFile = "/etc/wg-exec/keys/wg0-demo.psk";
          allowedIPs = [
            "192.0.2.0/24"
            "2001:db8:1::/48"
          ];
          endpoint = "demo.wireguard.io:12913";
          persistentKeepalive = 25;
        }
      ];
    };
  }
]
