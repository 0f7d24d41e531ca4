# `wg-exec up/down --print` against the script backend's commands (./script-backend.nix).
#
# Both sides go through the same spelling normalization (N1-N6 in differences.md: equivalent
# ways of writing one command); the script backend's list is then put in wg-exec's order and
# shape by the documented behavioural differences (D1, D3, D7). Anything else is a failure.
let
  inherit (builtins)
    concatMap
    concatStringsSep
    elemAt
    filter
    foldl'
    genList
    isString
    length
    match
    stringLength
    substring
    ;

  splitLines = s: filter isString (builtins.split "\n" s);

  # Whether `needle` occurs in `hay` (no regular expression: keys have + and /).
  hasInfix =
    needle: hay:
    let
      n = stringLength needle;
    in
    builtins.any (i: substring i n hay == needle) (genList (i: i) (stringLength hay - n + 1));

  # The printed text as lines (the last newline ends the last line).
  printedLines =
    text:
    let
      ls = splitLines text;
      n = length ls;
    in
    if n > 0 && elemAt ls (n - 1) == "" then genList (elemAt ls) (n - 1) else ls;

  hexDigits = {
    "0" = 0; "1" = 1; "2" = 2; "3" = 3; "4" = 4; "5" = 5; "6" = 6; "7" = 7; "8" = 8; "9" = 9;
    a = 10; b = 11; c = 12; d = 13; e = 14; f = 15;
    A = 10; B = 11; C = 12; D = 13; E = 14; F = 15;
  };
  chars = s: genList (i: substring i 1 s) (stringLength s);
  fromHex = s: foldl' (acc: c: acc * 16 + hexDigits.${c}) 0 (chars s);
  fromDec = s: foldl' (acc: c: acc * 10 + hexDigits.${c}) 0 (chars s);
  markValue =
    s:
    let
      h = match "0[xX]([0-9a-fA-F]+)" s;
    in
    if s == "off" then 0 else if h != null then fromHex (elemAt h 0) else fromDec s;

  # One line -> the lines it stands for, spelled one way.
  rules = [
    # N1: `ip netns exec NS ip ARGS` is `ip -n NS ARGS`.
    (l: let m = match "ip netns exec ([^ ]+) ip (.*)" l; in if m == null then null else [ "ip -n ${elemAt m 0} ${elemAt m 1}" ])
    # N2: `ip link set up dev X` is `ip link set dev X up`; `link set X ...` is `link set dev X ...`.
    (l: let m = match "ip( -n [^ ]+)? link set up dev ([^ ]+)" l; in if m == null then null else [ "ip${toString (elemAt m 0)} link set dev ${elemAt m 1} up" ])
    (
      l:
      let
        m = match "ip( -n [^ ]+)? link set ([^ ]+) (.*)" l;
      in
      if m == null || elemAt m 1 == "dev" then null else [ "ip${toString (elemAt m 0)} link set dev ${elemAt m 1} ${elemAt m 2}" ]
    )
    # D1: wg-exec's link step falls back to a userspace implementation (backend Auto).
    (l: let m = match "(.* type wireguard) [|][|] .*" l; in if m == null then null else [ (elemAt m 0) ])
    # N3: a firewall mark is a number, however written.
    (
      l:
      let
        m = match "(.* fwmark )(0[xX][0-9a-fA-F]+|[0-9]+|off)(.*)" l;
        v = toString (markValue (elemAt m 1));
      in
      if m == null || v == elemAt m 1 then null else [ "${elemAt m 0}${v}${elemAt m 2}" ]
    )
    # N4: key generation, wg-exec's one line and the module's two.
    (
      l:
      let
        m = match "mkdir -p -m 0755 (.*) && [{] [[] -e (.*) []] [|][|] [(]umask 077 && wg genkey > (.*)[)]; [}]" l;
      in
      if m == null then null else [ "mkdir -p -m 0755 ${elemAt m 0}" "generate ${elemAt m 2} unless it exists" ]
    )
    (
      l:
      let
        m = match "if [[] ! -f (.*) []]; then [(]umask 077; wg genkey > (.*)[)]; fi" l;
      in
      if m == null then null else [ "generate ${elemAt m 1} unless it exists" ]
    )
    # N5: an inline secret: the module passes a store file, wg-exec prints <redacted>.
    (l: let m = match "(.*)/nix/store/[^ ]*-wg-(key|psk)(.*)" l; in if m == null then null else [ "${elemAt m 0}<redacted>${elemAt m 2}" ])
  ];

  # Rules apply until none matches (a line can need several).
  normalize =
    l:
    let
      hit = foldl' (acc: r: if acc != null then acc else r l) null rules;
    in
    if hit == null then [ l ] else concatMap normalize hit;
  normalizeAll = concatMap normalize;

  # The script backend's commands in wg-exec's order: postSetup where the module runs it, at
  # the end of the interface's unit (after `ip link set up`, before any peer or route: the
  # peers are units started after it), then
  #   D3: all peers (in configuration order), then all routes, instead of one unit per peer
  #       (peer, then its routes) started in parallel.
  expectedUp =
    script:
    script.keygen
    ++ script.interface
    ++ script.postSetup
    ++ map (p: p.set) script.peers
    ++ concatMap (p: p.routes) script.peers;

  # D7: no per-peer `wg set ... remove` and route deletion at down: deleting the link removes
  # the peers and the routes with it.
  expectedDown = script: script.preShutdown ++ [ script.linkDel ] ++ script.postShutdown;

  showList = ls: concatStringsSep "\n" (map (l: "      " + l) ls);

  firstDifference =
    a: b:
    let
      n = if length a < length b then length a else length b;
      idx = filter (i: elemAt a i != elemAt b i) (genList (i: i) n);
    in
    if idx != [ ] then
      let
        i = builtins.head idx;
      in
      "line ${toString (i + 1)}: expected `${elemAt a i}`, wg-exec printed `${elemAt b i}`"
    else if length a != length b then
      "expected ${toString (length a)} lines, wg-exec printed ${toString (length b)}"
    else
      "";

  same =
    name: expected: actual:
    let
      e = normalizeAll expected;
      a = normalizeAll actual;
    in
    {
      inherit name;
      ok = e == a;
      detail =
        if e == a then
          ""
        else
          "${firstDifference e a}\n    expected (normalized):\n${showList e}\n    wg-exec (normalized):\n${showList a}";
    };

  # Exact (no normalization) equality of a run of lines at a position.
  linesAt =
    name: whole: start: want:
    let
      got = if start >= 0 && start + length want <= length whole then genList (i: elemAt whole (start + i)) (length want) else [ ];
    in
    {
      inherit name;
      ok = got == want;
      detail = if got == want then "" else "expected at line ${toString (start + 1)}:\n${showList want}\n    got:\n${showList got}";
    };
in
{
  inherit
    hasInfix
    normalize
    normalizeAll
    printedLines
    expectedUp
    expectedDown
    same
    linesAt
    markValue
    ;
}
