# What each nixosConfigurations entry of a flake is, and where the options
# its author wrote are defined (see nixgen/evaluate.py).
#
# Applied (`nix eval --json FLAKE#nixosConfigurations --apply`) as
# `(this file) { source; }`, then to the configurations. `source` is the
# store path of the flake's own source: a definition whose file lies below
# it is the author's, and so is one from an inline module the configuration
# was given. The module system names those `<unknown-file>`, or (nixpkgs'
# `lib.nixosSystem`: eval-config.nix's `modulesLocation`) the flake.nix of
# nixpkgs where `modules` is passed on: such a definition is the author's when
# one of the configuration's own inline modules, written in the flake's
# source, spells the option.
#
# Forces as little as it can: only options whose highest priority is below
# an option default's, only their definitions' files, and values only of
# options the author defines. Values are made JSON-safe: packages,
# functions and paths become tagged sets, a value that throws becomes an
# error tag instead of failing the whole evaluation.
{ source }:
let
  inherit (builtins)
    attrNames
    concatMap
    filter
    isAttrs
    isFunction
    length
    listToAttrs
    substring
    stringLength
    tryEval
    typeOf
    ;

  optionDefaultPrio = 1500;
  overridePrio = 100;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  inSource = file: hasPrefix (source + "/") file;
  hasSuffix =
    suffix: s:
    let
      n = stringLength s;
      k = stringLength suffix;
    in
    n >= k && substring (n - k) k s == suffix;
  # Where the module system may have put an inline module's definitions.
  inlineFile = file: file == "<unknown-file>" || (!inSource file && hasSuffix "/flake.nix" file);

  # The flake's own source moves to a new store path with every edit: values
  # name it as `<flake>` so that they compare equal before and after one.
  ownPath = builtins.replaceStrings [ source ] [ "<flake>" ];

  isOption = v: isAttrs v && (v._type or null) == "option";

  # Every option below a tree of options, as { path; option; }; never enters
  # an option (submodules' own options are part of its value).
  walk =
    path: tree:
    concatMap (
      name:
      let
        probe = tryEval tree.${name};
        v = probe.value;
      in
      if !probe.success || !isAttrs v then
        [ ]
      else if isOption v then
        [
          {
            path = path ++ [ name ];
            option = v;
          }
        ]
      else if (v._type or null) != null then
        [ ]
      else
        walk (path ++ [ name ]) v
    ) (attrNames tree);

  # The NixOS options nixgen models (beside every microvm.* one), where declared.
  modelled = [
    [
      "networking"
      "hostName"
    ]
    [
      "system"
      "stateVersion"
    ]
    [
      "services"
      "openssh"
      "enable"
    ]
    [
      "environment"
      "systemPackages"
    ]
  ];

  optionAt =
    options: path:
    let
      go =
        tree: rest:
        if isOption tree then
          (if rest == [ ] then [ tree ] else below tree rest)
        else if rest == [ ] then
          [ ]
        else
          let
            probe = tryEval (isAttrs tree && tree ? ${builtins.head rest});
          in
          if probe.success && probe.value then go tree.${builtins.head rest} (builtins.tail rest) else [ ];
    in
    go options path;

  hasPath =
    rest: v:
    rest == [ ] || (isAttrs v && v ? ${builtins.head rest} && hasPath (builtins.tail rest) v.${builtins.head rest});
  getPath = rest: v: if rest == [ ] then v else getPath (builtins.tail rest) v.${builtins.head rest};

  # An option declared inside a submodule option (a NixOS namespace that is
  # one, e.g. in nixgen's stand-in): its definitions are the parts of the
  # submodule's definitions that reach it.
  below =
    opt: rest:
    let
      probe = tryEval (
        let
          subs = concatMap (
            d:
            if hasPath rest d.value then
              [
                {
                  inherit (d) file;
                  value = getPath rest d.value;
                }
              ]
            else
              [ ]
          ) (opt.definitionsWithLocations or [ ]);
          best = builtins.foldl' (m: d: if prioOf d.value < m then prioOf d.value else m) 9999 subs;
          kept = filter (d: prioOf d.value == best) subs;
        in
        if subs == [ ] then
          [ ]
        else
          [
            {
              _type = "option";
              highestPrio = best;
              value = getPath rest opt.value;
              definitionsWithLocations = map (
                d: d // { value = if isAttrs d.value && (d.value._type or null) == "override" then d.value.content else d.value; }
              ) kept;
            }
          ]
      );
    in
    if probe.success then probe.value else [ ];

  # A value as JSON can hold it (depth-limited: values are for showing and comparing).
  safe =
    depth: v:
    let
      probe = tryEval v;
      x = probe.value;
      t = typeOf x;
    in
    if !probe.success then
      { _nixgen = "error"; }
    else if t == "lambda" then
      { _nixgen = "function"; }
    else if t == "path" then
      {
        _nixgen = "path";
        path = ownPath (toString x);
      }
    else if t == "string" then
      ownPath (builtins.unsafeDiscardStringContext x)
    else if t == "set" then
      if (x.type or null) != "derivation" && x ? outPath then
        # a flake (`self`, an input) or a source: its path, not its attributes
        {
          _nixgen = "path";
          path = ownPath (builtins.unsafeDiscardStringContext (toString x.outPath));
        }
      else if (x.type or null) == "derivation" then
        {
          _nixgen = "package";
          name =
            let
              n = tryEval (x.pname or x.name or null);
            in
            if n.success && builtins.isString n.value then builtins.unsafeDiscardStringContext n.value else null;
        }
      else if (x._type or null) != null then
        {
          _nixgen = "property";
          type = x._type;
        }
      else if depth <= 0 then
        { _nixgen = "deep"; }
      else
        builtins.mapAttrs (_: safe (depth - 1)) x
    else if t == "list" then
      if depth <= 0 then { _nixgen = "deep"; } else map (safe (depth - 1)) x
    else
      x;

  # The priority a raw definition asks for (mkOverride), else the normal one.
  prioOf = v: if isAttrs v && (v._type or null) == "override" then v.priority else overridePrio;

  # Where an attribute set module writes `path`: the deepest attribute of it
  # that it spells (line and column), with the priority its value asks for.
  positionIn =
    m: path:
    let
      go =
        set: rest:
        let
          k = builtins.head rest;
          more = builtins.tail rest;
          here = builtins.unsafeGetAttrPos k set;
          probe = tryEval set.${k};
          deeper =
            if more != [ ] && probe.success && isAttrs probe.value && (probe.value._type or null) == null then
              go probe.value more
            else
              null;
        in
        if !(isAttrs set && set ? ${k}) then
          null
        else if deeper != null then
          deeper
        else if here == null then
          null
        else
          here
          // {
            depth = length path - length more;
            prio = if more == [ ] && probe.success then prioOf probe.value else overridePrio;
          };
      body = if m ? config && isAttrs m.config then m.config else m;
    in
    if !isAttrs m then null else go body path;

  # The inline modules the configuration was given (nixpkgs' eval-config.nix
  # passes them as `_module.args.modules`), functions called with the
  # configuration's own module arguments where they ask for nothing else.
  inlineModules =
    configuration:
    let
      args =
        (configuration._module.args or { })
        // {
          inherit (configuration) config options;
          lib = configuration.pkgs.lib or { };
        };
      listed = (tryEval (configuration._module.args.modules or [ ])).value;
      call =
        m:
        if isFunction m then
          let
            wanted = builtins.functionArgs m;
            missing = filter (n: !wanted.${n} && !(args ? ${n})) (attrNames wanted);
          in
          if missing == [ ] then
            [ (m (builtins.intersectAttrs wanted args // { inherit (args) config options lib; })) ]
          else
            [ ]
        else if isAttrs m then
          [ m ]
        else
          [ ];
      expand =
        m:
        let
          got = concatMap call [ m ];
          probe = tryEval (concatMap (x: if isAttrs x && x ? imports then x.imports else [ ]) got);
        in
        got ++ concatMap expand (if probe.success then filter (i: !(builtins.isPath i || builtins.isString i)) probe.value else [ ]);
      probe = tryEval (concatMap expand listed);
    in
    if probe.success then probe.value else [ ];

  # Where the configuration's own inline modules (written in the flake's
  # source) spell an option.
  positionsOf =
    inline: path: filter (p: p != null && inSource p.file) (map (m: positionIn m path) inline);

  describeOption =
    inline: entry:
    let
      opt = entry.option;
      defs = opt.definitionsWithLocations or [ ];
      files = map (d: d.file) defs;
      positions = if builtins.any inlineFile files then positionsOf inline entry.path else [ ];
    in
    {
      name = builtins.concatStringsSep "." entry.path;
      value = {
        path = entry.path;
        value = safe 6 opt.value;
        highestPrio = opt.highestPrio;
        definitions = map (d: {
          inherit (d) file;
          inline = inlineFile d.file && positions != [ ];
          value = safe 6 d.value;
        }) defs;
        # Where inline modules write the option (several: the module system merges them).
        inline = positions;
      };
    };

  ownOptions =
    configuration:
    let
      options = configuration.options;
      microvm =
        let
          probe = tryEval (options ? microvm && isAttrs options.microvm);
        in
        if probe.success && probe.value then walk [ "microvm" ] options.microvm else [ ];
      nixos = concatMap (
        p:
        map (o: {
          path = p;
          option = o;
        }) (optionAt options p)
      ) modelled;
      inline = inlineModules configuration;
      defined = filter (
        e:
        let
          probe = tryEval (
            let
              files = map (d: d.file) (e.option.definitionsWithLocations or [ ]);
            in
            e.option.highestPrio < optionDefaultPrio
            && (
              builtins.any inSource files
              || (builtins.any inlineFile files && positionsOf inline e.path != [ ])
            )
          );
        in
        probe.success && probe.value
      ) (microvm ++ nixos);
    in
    listToAttrs (map (describeOption inline) defined);

  kindOf =
    configuration:
    let
      guest = tryEval (
        configuration.options ? microvm && configuration.options.microvm ? declaredRunner
      );
      host = tryEval (configuration.options ? microvm && configuration.options.microvm ? vms);
    in
    if !guest.success then
      "error"
    else if guest.value then
      "guest"
    else if host.success && host.value then
      "host"
    else
      "other";

  describe =
    configuration:
    let
      kind = kindOf configuration;
      system = tryEval (configuration.pkgs.stdenv.hostPlatform.system or null);
      runs = tryEval (attrNames (configuration.config.microvm.vms or { }));
    in
    {
      inherit kind;
      system = if system.success then system.value else null;
      runs = if kind == "host" && runs.success then runs.value else [ ];
      options = if kind == "other" || kind == "error" then { } else ownOptions configuration;
      # What a one-line summary shows, whoever defines it (microvm.nix's defaults too).
      summary =
        if kind == "guest" then
          builtins.mapAttrs (n: _: safe 1 configuration.config.microvm.${n}) {
            hypervisor = null;
            vcpu = null;
            mem = null;
          }
        else
          { };
    };

  # A configuration that throws (a module system error, a failed assertion)
  # does not hide the others: it is reported as `error`.
  describeSafely =
    configuration:
    let
      probe = tryEval (
        let
          d = describe configuration;
        in
        builtins.deepSeq d d
      );
    in
    if probe.success then
      probe.value
    else
      {
        kind = "error";
        system = null;
        runs = [ ];
        options = { };
        summary = { };
      };
in
configurations: builtins.mapAttrs (_: describeSafely) configurations
