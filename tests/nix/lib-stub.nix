# A stand-in for the few parts of nixpkgs' `lib` that nix/module.nix uses, plus `evalModules`,
# a small module evaluator: enough to evaluate the module without nixpkgs and look at its
# options' values and at what it defines (systemd.services, environment.etc, assertions, ...).
#
# Semantics kept from the real module system: options are declared with mkOption and merged
# across modules; a definition for an undeclared option is an error; a value is checked
# against its type; submodules see their own `config` (and `name`); coercedTo converts;
# mkIf/mkMerge in `config`; `imports` are followed. Not kept: priorities (mkDefault/mkForce),
# several definitions of one option, `apply`, freeform modules.
let
  inherit (builtins)
    all
    any
    attrNames
    concatMap
    elem
    filter
    foldl'
    genList
    isAttrs
    isBool
    isFunction
    isInt
    isList
    isString
    length
    mapAttrs
    match
    typeOf
    ;

  isOption = v: isAttrs v && (v._type or null) == "option";

  mkType =
    name: check:
    {
      inherit name check;
      merge = loc: v: if check v then v else throw "A definition for option `${loc}' is not of type `${name}': ${typeOf v}.";
    };

  types = rec {
    bool = mkType "boolean" isBool;
    int = mkType "signed integer" isInt;
    str = mkType "string" isString;
    lines = mkType "strings concatenated with \"\\n\"" isString;
    singleLineStr = mkType "(optionally newline-terminated) single-line string" (v: isString v && match "[^\n]*\n?" v != null);
    path = mkType "path" (v: (isString v && match "/.*" v != null) || typeOf v == "path");
    package = mkType "package" (v: isString v || (isAttrs v && (v.type or null) == "derivation"));
    ints.unsigned = mkType "unsigned integer, meaning >=0" (v: isInt v && v >= 0);
    enum =
      values:
      mkType "one of ${builtins.concatStringsSep ", " (map builtins.toJSON values)}" (v: elem v values);
    oneOf =
      ts:
      mkType (builtins.concatStringsSep " or " (map (t: t.name) ts)) (v: any (t: t.check v) ts);
    nullOr = t: {
      name = "null or ${t.name}";
      check = v: v == null || t.check v;
      merge = loc: v: if v == null then null else t.merge loc v;
    };
    listOf = t: {
      name = "list of ${t.name}";
      check = isList;
      merge =
        loc: v:
        if isList v then
          genList (i: t.merge "${loc}.[${toString i}]" (builtins.elemAt v i)) (length v)
        else
          throw "A definition for option `${loc}' is not of type `list of ${t.name}'.";
    };
    attrsOf = t: {
      name = "attribute set of ${t.name}";
      check = isAttrs;
      merge =
        loc: v:
        if isAttrs v then
          mapAttrs (n: x: t.merge "${loc}.${n}" x) v
        else
          throw "A definition for option `${loc}' is not of type `attribute set of ${t.name}'.";
    };
    coercedTo = from: f: to: {
      name = "${to.name} or ${from.name} convertible to it";
      check = v: to.check v || from.check v;
      merge = loc: v: if from.check v && !(to.check v) then to.merge loc (f v) else to.merge loc v;
    };
    submodule = m: {
      name = "submodule";
      check = isAttrs;
      merge =
        loc: v:
        let
          last = let parts = filter isString (builtins.split "\\." loc); in builtins.elemAt parts (length parts - 1);
          mod = if isFunction m then m { config = result; name = last; lib = stub; } else m;
          result = evalOptions loc mod.options v;
        in
        if isAttrs v then result else throw "A definition for option `${loc}' is not of type `submodule'.";
    };
  };

  # Option values from declarations (nested attribute sets with mkOption leaves) and one
  # definition (a nested attribute set).
  evalOptions =
    loc: opts: defs:
    let
      unknown = filter (n: !(opts ? ${n})) (attrNames defs);
      at = n: if loc == "" then n else "${loc}.${n}";
    in
    if unknown != [ ] then
      throw "The option `${at (builtins.head unknown)}' does not exist."
    else
      mapAttrs (
        n: o:
        if isOption o then
          (
            if defs ? ${n} then
              o.type.merge (at n) defs.${n}
            else if o ? default then
              o.type.merge (at n) o.default
            else
              throw "The option `${at n}' is used but not defined."
          )
        else
          evalOptions (at n) o (defs.${n} or { })
      ) opts;

  # Declarations of several modules, merged; an option declared twice is an error, as in the
  # real module system.
  mergeDecls =
    loc: a: b:
    foldl' (
      acc: n:
      if !(acc ? ${n}) then
        acc // { ${n} = b.${n}; }
      else if isOption acc.${n} || isOption b.${n} then
        throw "The option `${loc}${n}' is already declared."
      else
        acc // { ${n} = mergeDecls "${loc}${n}." acc.${n} b.${n}; }
    ) a (attrNames b);

  # mkIf / mkMerge resolved, definitions of several modules merged (lists appended).
  resolve =
    v:
    if isAttrs v && (v._type or null) == "if" then
      (if v.condition then resolve v.content else { })
    else if isAttrs v && (v._type or null) == "merge" then
      foldl' mergeDefs { } (map resolve v.contents)
    else if isAttrs v && (v._type or null) == null && (v.type or null) != "derivation" then
      mapAttrs (_: resolve) v
    else
      v;

  mergeDefs =
    a: b:
    if isAttrs a && isAttrs b then
      foldl' (acc: n: acc // { ${n} = if acc ? ${n} then mergeDefs acc.${n} b.${n} else b.${n}; }) a (attrNames b)
    else if isList a && isList b then
      a ++ b
    else if a == b then
      a
    else
      throw "conflicting definitions: ${builtins.toJSON a} and ${builtins.toJSON b}";

  # What modules may define besides their own options (NixOS declares these elsewhere).
  outputs = {
    systemd = { };
    environment = { };
    boot = { };
    assertions = [ ];
    warnings = [ ];
  };

  evalModules =
    {
      modules,
      specialArgs ? { },
      config ? { },
    }:
    let
      args = {
        config = final;
        options = declarations;
        lib = stub;
      }
      // specialArgs;
      call =
        m0:
        let
          m = if typeOf m0 == "path" || isString m0 then import m0 else m0;
        in
        if isFunction m then m args else m;
      collect = m: let r = call m; in [ r ] ++ concatMap collect (r.imports or [ ]);
      evaluated = concatMap collect modules;
      declarations = foldl' (mergeDecls "") { } (map (r: r.options or { }) evaluated);
      defined = foldl' mergeDefs { } (map (r: resolve (r.config or { })) evaluated);
      optionValues = evalOptions "" declarations config;
      final = optionValues // mapAttrs (k: empty: defined.${k} or empty) outputs;
    in
    {
      config = final;
      options = declarations;
      # disabledModules of every module, as the real module system would apply them.
      disabledModules = concatMap (r: r.disabledModules or [ ]) evaluated;
      modules = evaluated;
    };

  stub = {
    inherit types evalModules;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: {
      _type = "option";
      type = types.bool;
      default = false;
      description = "Whether to enable ${name}.";
    };
    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    optional = c: x: if c then [ x ] else [ ];
  };
in
stub
