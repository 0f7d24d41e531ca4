# The entry point of run.sh's Nix evaluations.
#   what = "render":  the scenarios of `stage` as { id, iface, check, error, sameAs, ron }
#   what = "compare": the checks on wg-exec's outputs in outDir (one file per scenario and kind)
#   what = "module":  the checks of nix/module.nix with the lib stand-in
{
  envFile,
  what,
  stage ? "1",
  outDir ? "",
}:
let
  inherit (builtins) concatMap filter length pathExists readFile;
  env = builtins.fromJSON (readFile envFile);
  render = import ../../nix/render.nix;
  cmp = import ./compare.nix;
  scenarios = import ./scenarios.nix env;
  atStage = filter (s: toString s.stage == stage) scenarios;

  out = id: kind: "${outDir}/${id}.${kind}";
  has = id: kind: pathExists (out id kind);
  text = id: kind: readFile (out id kind);
  lines = id: kind: cmp.printedLines (text id kind);
  trim = s: let m = builtins.match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" s; in if m == null then "" else builtins.head m;
  contains = cmp.hasInfix;

  hookLines = v: let t = render.hookText v; in if t == "" then [ ] else filter builtins.isString (builtins.split "\n" t);

  checksFor =
    s:
    let
      script = import ./script-backend.nix s.iface s.cfg;
      cfg = render.withDefaults s.cfg;
      up = lines s.id "up";
      down = lines s.id "down";
      rc = trim (text s.id "check.rc");
      err = text s.id "check.err";
      pre = hookLines cfg.preSetup;
      post = hookLines cfg.postSetup;
      preDown = hookLines cfg.preShutdown;
      postDown = hookLines cfg.postShutdown;
      n = prefix: "${s.id}: ${prefix}";
      # pre_setup comes after key generation (one line in wg-exec's print) and modprobe.
      preAt = (if cfg.generatePrivateKeyFile then 1 else 0) + 1;
      # post_setup comes right after `ip [-n NS] link set dev NAME up` (-1: no such line).
      linkUpAt =
        let
          at = filter (x: builtins.match "ip( -n [^ ]+)? link set dev ${s.iface} up" (builtins.elemAt up x) != null) (builtins.genList (x: x) (length up));
        in
        if at == [ ] then -1 else builtins.head at + 1;
    in
    (
      if s.check == "valid" then
        [ { name = n "wg-exec check accepts the rendered RON"; ok = rc == "0"; detail = "exit ${rc}: ${err}"; } ]
      else if s.check == "invalid" then
        [
          {
            name = n "wg-exec check refuses it (documented in differences.md)";
            ok = rc == "2" && contains s.error err;
            detail = "exit ${rc}, expected 2 and `${s.error}`: ${err}";
          }
        ]
        ++ (
          if has s.id "up-real.rc" then
            [
              {
                name = n "wg-exec up refuses it too, before pre_setup runs (${s.absent} was not made)";
                ok = trim (text s.id "up-real.rc") == "2" && trim (text s.id "up-real.absent") == "absent";
                detail = "exit ${trim (text s.id "up-real.rc")}, ${s.absent} ${trim (text s.id "up-real.absent")}: ${text s.id "up-real.err"}";
              }
            ]
          else
            [ ]
        )
      else if s.check == "later" then
        [
          {
            name = n "wg-exec check accepts it and says pre_setup must make it";
            ok = rc == "0" && contains s.error err;
            detail = "exit ${rc}, expected 0 and `${s.error}`: ${err}";
          }
          {
            name = n "wg-exec up runs pre_setup, which makes ${s.absent}, and comes up";
            ok = trim (text s.id "up-real.rc") == "0" && trim (text s.id "up-real.absent") == "present";
            detail = "exit ${trim (text s.id "up-real.rc")}, ${s.absent} ${trim (text s.id "up-real.absent")}: ${text s.id "up-real.err"}";
          }
          {
            name = n "wg-exec down takes it down";
            ok = trim (text s.id "down-real.rc") == "0";
            detail = "exit ${trim (text s.id "down-real.rc")}: ${text s.id "down-real.err"}";
          }
        ]
      else
        [ ]
    )
    ++ (
      if s.check != "invalid" && s.check != "later" && !(s ? sameAs) then
        [
          (cmp.same (n "up --print = the script backend's up") (cmp.expectedUp script) up)
          (cmp.same (n "down --print = the script backend's down") (cmp.expectedDown script) down)
        ]
      else
        [ ]
    )
    ++ (
      if s ? sameAs then
        [
          (cmp.same (n "up --print of the rendered options = up --print of ${s.sameAs}") (lines s.id "same") up)
          (cmp.same (n "down --print of the rendered options = down --print of ${s.sameAs}") (lines s.id "same-down") down)
        ]
      else
        [ ]
    )
    # The hooks exactly as written (no normalization), where the plan runs them.
    ++ (
      if s.check != "invalid" && s.check != "later" && (pre != [ ] || post != [ ] || preDown != [ ] || postDown != [ ]) then
        [
          (cmp.linesAt (n "up --print shows pre_setup exactly") up preAt pre)
          (cmp.linesAt (n "up --print shows post_setup exactly, right after the link is up (where the module runs postSetup)") up linkUpAt post)
          (cmp.linesAt (n "down --print shows pre_shutdown exactly, first") down 0 preDown)
          (cmp.linesAt (n "down --print shows post_shutdown exactly, last") down (length down - length postDown) postDown)
        ]
      else
        [ ]
    )
    ++ map (want: {
      name = n "the RON has ${builtins.toJSON want}";
      ok = contains want (render.ron s.iface s.cfg);
      detail = render.ron s.iface s.cfg;
    }) (s.ronHas or [ ])
    ++ (
      if s ? refresh then
        [
          {
            name = n "refresh unit ${if s.refresh then "present" else "absent"}";
            ok = (render.units { name = s.iface; cfg = s.cfg; bin = "wg-exec"; }) ? "wg-exec-refresh@${s.iface}" == s.refresh;
            detail = "";
          }
        ]
      else
        [ ]
    );
in
if what == "render" then
  map (s: {
    inherit (s) id iface check;
    error = s.error or "";
    absent = s.absent or "";
    inNs = s.inNs or false;
    sameAs = s.sameAs or "";
    ron = render.ron s.iface s.cfg;
  }) atStage
else if what == "compare" then
  concatMap checksFor (filter (s: has s.id "up" || has s.id "check.rc") scenarios)
else if what == "module" then
  import ./module-checks.nix { inherit env; }
else
  throw "what: render, compare or module"
