# A small module system with the semantics (and error messages) of nixpkgs'
# `lib.evalModules`, written for nixgen's tests:
#
# - modules are attribute sets, functions `{ config, options, lib, ... }:`
#   (other arguments come from `specialArgs` or `config._module.args`) or
#   paths; `imports` are followed depth-first and deduplicated by key;
# - a module either has `options`/`config` (plus `imports`, `_file`, `key`,
#   `disabledModules`, `meta`, `freeformType`) or is shorthand: all of its
#   other attributes are config;
# - `mkIf`, `mkMerge`, `mkOverride` (`mkDefault`, `mkForce`, ...) and
#   `mkOrder` (`mkBefore`, `mkAfter`) work at any depth: at a namespace they
#   are pushed down to the options below it without evaluating conditions;
# - definitions of undeclared options are an error ("The option `x' does not
#   exist.") unless the evaluation has a freeform type, which then takes them.
lib:
let
  inherit (builtins)
    attrNames
    concatMap
    filter
    foldl'
    head
    length
    isAttrs
    isList
    isString
    isPath
    isBool
    ;

  inherit (lib.options) showOption showDefs;

  defaultOverridePriority = 100;
  defaultOrderPriority = 1000;

  moduleMetaKeys = [
    "_class"
    "_file"
    "key"
    "disabledModules"
    "imports"
    "meta"
    "freeformType"
  ];
  explicitModuleKeys = moduleMetaKeys ++ [
    "options"
    "config"
  ];

  # ---------------------------------------------------------------- properties

  mkIf = condition: content: {
    _type = "if";
    inherit condition content;
  };
  mkMerge = contents: {
    _type = "merge";
    inherit contents;
  };
  mkOverride = priority: content: {
    _type = "override";
    inherit priority content;
  };
  mkOrder = priority: content: {
    _type = "order";
    inherit priority content;
  };

  typeOfProperty = v: if isAttrs v then v._type or null else null;

  # At a namespace: turn one definition into a list of plain attribute sets,
  # moving mkIf/mkOverride/mkOrder onto every attribute (conditions are not
  # evaluated here, which is what lets `config = mkIf cfg.enable { ... }`
  # refer to the configuration it is part of).
  pushDownProperties =
    v:
    let
      t = typeOfProperty v;
      wrapEach = wrap: map (c: if isAttrs c then builtins.mapAttrs (_: wrap) c else c);
    in
    if t == "merge" then
      concatMap pushDownProperties v.contents
    else if t == "if" then
      wrapEach (mkIf v.condition) (pushDownProperties v.content)
    else if t == "override" then
      wrapEach (mkOverride v.priority) (pushDownProperties v.content)
    else if t == "order" then
      wrapEach (mkOrder v.priority) (pushDownProperties v.content)
    else
      [ v ];

  # At an option: peel the properties off one definition value. Returns a
  # list of { value; prio; order; } (null when no mkOverride/mkOrder applied).
  peel =
    prio: order: v:
    let
      t = typeOfProperty v;
    in
    if t == "merge" then
      concatMap (peel prio order) v.contents
    else if t == "if" then
      if !isBool v.condition then
        throw "mkIf called with a non-Boolean condition"
      else if v.condition then
        peel prio order v.content
      else
        [ ]
    else if t == "override" then
      # The first mkOverride decides the priority; its content is peeled only
      # if it survives priority filtering (so an overridden default is never
      # evaluated).
      if prio == null then
        [
          {
            value = v.content;
            prio = v.priority;
            inherit order;
            deferred = true;
          }
        ]
      else
        peel prio order v.content
    else if t == "order" then
      peel prio (if order == null then v.priority else order) v.content
    else
      [
        {
          value = v;
          inherit prio order;
          deferred = false;
        }
      ];

  # ----------------------------------------------------------- option values

  # Resolve properties, keep the definitions with the highest priority
  # (lowest number), sort them by mkOrder, type-check and merge them.
  mergeDefinitions =
    loc: type: defs:
    let
      peeled = concatMap (
        d:
        map (p: p // { inherit (d) file; }) (
          builtins.addErrorContext "while evaluating definitions from `${toString d.file}':" (
            peel null null d.value
          )
        )
      ) defs;
      prioOf = p: if p.prio == null then defaultOverridePriority else p.prio;
      orderOf = p: if p.order == null then defaultOrderPriority else p.order;
      highestPrio = foldl' (m: p: lib.min m (prioOf p)) 9999 peeled;
      kept = concatMap (
        p:
        if p.deferred then map (q: q // { inherit (p) file; }) (peel p.prio p.order p.value) else [ p ]
      ) (filter (p: prioOf p == highestPrio) peeled);
      defsFinal = map (p: { inherit (p) file value; }) (builtins.sort (a: b: orderOf a < orderOf b) kept);
      isDefined = length defsFinal > 0;
      invalid = filter (d: !(type.check d.value)) defsFinal;
      mergedValue =
        if !isDefined then
          throw "The option `${showOption loc}' was accessed but has no value defined. Try setting the option."
        else if invalid != [ ] then
          throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${showDefs invalid}"
        else
          type.merge loc defsFinal;
    in
    {
      inherit
        defsFinal
        isDefined
        mergedValue
        highestPrio
        ;
      optionalValue = if isDefined then { value = mergedValue; } else { };
    };

  # Several declarations of one option are fine when all are submodules
  # (their modules are combined); anything else is a double declaration.
  mergeOptionDecls =
    loc: decls:
    let
      first = head decls;
      types = map (d: d.decl.type or null) decls;
      allSubmodules = builtins.all (t: t != null && (t.getSubModules or null) != null) types;
      withDefault = filter (d: d.decl ? default) decls;
    in
    if length decls == 1 then
      first.decl // { declarations = [ first.file ]; }
    else if allSubmodules && length withDefault <= 1 then
      foldl' (a: d: a // d.decl) { } decls
      // {
        type = (head types).substSubModules (concatMap (t: t.getSubModules) types);
        declarations = map (d: d.file) decls;
      }
    else
      throw "The option `${showOption loc}' in `${(builtins.elemAt decls 1).file}' is already declared in `${first.file}'.";

  evalOption =
    loc: decls: defs:
    let
      decl = mergeOptionDecls loc decls;
      type = decl.type or lib.types.unspecified;
      defaultDef = lib.optional (decl ? default) {
        file = head decl.declarations;
        value = mkOverride 1500 decl.default;
      };
      res = mergeDefinitions loc type (defaultDef ++ defs);
      applied = if (decl.apply or null) != null then decl.apply res.mergedValue else res.mergedValue;
      value =
        if (decl.readOnly or false) == true && length defs > 1 then
          throw "The option `${showOption loc}' is read-only, but it's set multiple times.${showDefs defs}"
        else
          builtins.addErrorContext "while evaluating the option `${showOption loc}':" applied;
    in
    decl
    // {
      _type = "option";
      inherit loc type value;
      inherit (res) isDefined highestPrio;
      files = map (d: d.file) res.defsFinal;
      definitions = map (d: d.value) res.defsFinal;
      definitionsWithLocations = res.defsFinal;
    };

  # ------------------------------------------------------------- namespaces

  # One level of the option tree. `decls` are { file; tree; } (this level's
  # part of a module's `options`), `defs` are { file; value; } with `value` a
  # plain attribute set. Returns the options and config of this level and the
  # definitions nothing declared (with their path below this level).
  mergeLevel =
    loc: decls: defs:
    let
      declared = foldl' (acc: d: acc // builtins.mapAttrs (_: _: true) d.tree) { } decls;
      defined = attrNames (foldl' (acc: d: acc // d.value) { } defs);
      defsFor =
        name:
        concatMap (
          d:
          if d.value ? ${name} then
            [
              {
                inherit (d) file;
                value = d.value.${name};
              }
            ]
          else
            [ ]
        ) defs;

      children = builtins.mapAttrs (
        name: _:
        let
          childLoc = loc ++ [ name ];
          here = concatMap (
            d:
            if d.tree ? ${name} then
              [
                {
                  inherit (d) file;
                  decl = d.tree.${name};
                }
              ]
            else
              [ ]
          ) decls;
          optionDecls = filter (d: lib.isOption d.decl) here;
          namespaceDecls = filter (
            d:
            !(lib.isOption d.decl)
            && (
              isAttrs d.decl
              || throw "The option declaration `${showOption childLoc}' in `${d.file}' is neither an option (mkOption) nor an attribute set of options."
            )
          ) here;
        in
        if namespaceDecls == [ ] then
          {
            isOption = true;
            option = evalOption childLoc optionDecls (defsFor name);
          }
        else if optionDecls == [ ] then
          {
            isOption = false;
            level = mergeLevel childLoc (map (d: {
              inherit (d) file;
              tree = d.decl;
            }) namespaceDecls) (concatMap (pushDown childLoc) (defsFor name));
          }
        else
          throw "The option `${showOption childLoc}' in `${(head optionDecls).file}' is a prefix of options in `${(head namespaceDecls).file}'."
      ) declared;

      unmatched = concatMap (
        name:
        if declared ? ${name} then
          if children.${name}.isOption then
            [ ]
          else
            map (u: u // { prefix = [ name ] ++ u.prefix; }) children.${name}.level.unmatched
        else
          map (d: d // { prefix = [ name ]; }) (defsFor name)
      ) defined;
    in
    {
      options = builtins.mapAttrs (_: c: if c.isOption then c.option else c.level.options) children;
      config = builtins.mapAttrs (_: c: if c.isOption then c.option.value else c.level.config) children;
      inherit unmatched;
    };

  pushDown =
    loc: def:
    map (
      v:
      if isAttrs v then
        {
          inherit (def) file;
          value = v;
        }
      else
        throw "A definition for option `${showOption loc}' is not of type `attribute set': `${showOption loc}' is a namespace of options. Definition values:${
          showDefs [ (def // { value = v; }) ]
        }"
    ) (pushDownProperties def.value);

  # ------------------------------------------------------------ collecting

  callModule =
    ctx: file: f:
    let
      wanted = lib.functionArgs f;
      fromContext = builtins.mapAttrs (
        name: _:
        if ctx.args ? ${name} then
          ctx.args.${name}
        else
          ctx.moduleArgs.${name}
            or (throw "The module `${file}' asks for the argument `${name}', but neither specialArgs nor config._module.args provide it.")
      ) wanted;
    in
    f (ctx.args // fromContext);

  normaliseModule =
    ctx: file: key: m:
    if lib.isFunction m then
      normaliseModule ctx file key (callModule ctx file m)
    else if isPath m || isString m then
      normaliseModule ctx (toString m) (toString m) (import m)
    else if !isAttrs m then
      throw "The module `${key}' (from `${file}') is a ${builtins.typeOf m}; a module must be a function, an attribute set or a path."
    else
      let
        file' = toString (m._file or file);
        # keys index attribute sets: no string context allowed
        key' = builtins.unsafeDiscardStringContext (toString (m.key or key));
        freeform = lib.optional (m ? freeformType) { _module.freeformType = m.freeformType; };
        classCheck =
          if (m._class or null) != null && ctx.class != null && m._class != ctx.class then
            throw "The module `${file'}' was imported into `${ctx.class}' instead of `${m._class}'."
          else
            x: x;
        extra = removeAttrs m explicitModuleKeys;
        base = {
          file = file';
          key = key';
          imports = m.imports or [ ];
          disabledModules = m.disabledModules or [ ];
        };
      in
      classCheck (
        if m ? options || m ? config then
          if extra != { } then
            throw "Module `${key'}' has an unsupported attribute `${head (attrNames extra)}'. This is caused by introducing a top-level `config' or `options' attribute. Add configuration attributes immediately on the top level instead, or move all of them (namely: ${builtins.concatStringsSep " " (attrNames extra)}) into the explicit `config' attribute."
          else
            base
            // {
              options = m.options or { };
              config = mkMerge ([ (m.config or { }) ] ++ freeform);
            }
        else
          base
          // {
            options = { };
            config = mkMerge ([ (removeAttrs m moduleMetaKeys) ] ++ freeform);
          }
      );

  collectModules =
    ctx: modules:
    let
      load =
        parent: i: m:
        if isPath m || isString m then
          normaliseModule ctx (toString m) (toString m) m
        else
          normaliseModule ctx parent.file "${parent.key}:anon-${toString i}" m;
      walk =
        state: item:
        if state.seen ? ${item.key} then
          state
        else
          foldl' walk {
            seen = state.seen // {
              ${item.key} = true;
            };
            out = state.out ++ [ item ];
          } (lib.imap1 (load item) item.imports);
      top = lib.imap1 (load {
        file = "<unknown-file>";
        key = "";
      }) modules;
      all = (foldl' walk {
        seen = { };
        out = [ ];
      } top).out;
      disabledKey =
        x:
        if isAttrs x && x ? key then
          toString x.key
        else if isString x && !(lib.hasPrefix "/" x) && ctx.args ? modulesPath then
          "${toString ctx.args.modulesPath}/${x}"
        else
          toString x;
      disabled = map (x: builtins.unsafeDiscardStringContext (disabledKey x)) (
        concatMap (m: m.disabledModules) all
      );
    in
    if disabled == [ ] then all else filter (m: !(builtins.elem m.key disabled)) all;

  # ------------------------------------------------------------ evaluation

  evalModules =
    {
      modules ? [ ],
      specialArgs ? { },
      prefix ? [ ],
      class ? null,
      args ? { },
    }@evalArgs:
    let
      internals = {
        _file = "<nixgen-standin>/lib/modules.nix";
        key = "<nixgen-standin>:module-internals";
        options._module = {
          args = lib.mkOption {
            type = lib.types.lazyAttrsOf lib.types.raw;
            default = { };
            internal = true;
            description = "Arguments passed to every module function.";
          };
          check = lib.mkOption {
            type = lib.types.bool;
            default = true;
            internal = true;
            description = "Whether to reject definitions of undeclared options.";
          };
          freeformType = lib.mkOption {
            type = lib.types.raw // {
              merge = _: defs: (lib.last defs).value;
            };
            default = null;
            internal = true;
            description = "Type taking the definitions that no option declares.";
          };
        };
        config._module.args = args;
      };

      ctx = {
        inherit class;
        args = {
          inherit lib config;
          options = merged.options;
          _prefix = prefix;
          _class = class;
        }
        // specialArgs;
        moduleArgs = merged.config._module.args;
      };

      collected = collectModules ctx (modules ++ [ internals ]);

      merged = mergeLevel prefix (map (m: {
        inherit (m) file;
        tree = m.options;
      }) collected) (
        concatMap (
          m:
          pushDown prefix {
            inherit (m) file;
            value = m.config;
          }
        ) collected
      );

      declaredConfig = merged.config;
      freeformType = declaredConfig._module.freeformType;
      freeformDefs = map (u: {
        inherit (u) file;
        value = lib.setAttrByPath u.prefix u.value;
      }) merged.unmatched;
      config =
        if freeformType == null then
          declaredConfig
        else
          lib.recursiveUpdateUntil (_: _: _: false) (
            if freeformDefs == [ ] then { } else freeformType.merge prefix freeformDefs
          ) declaredConfig;

      checkUnmatched =
        if freeformType == null && declaredConfig._module.check && merged.unmatched != [ ] then
          let
            u = head merged.unmatched;
            hint = lib.optionalString (lib.isOption u.value) " It seems as if you're trying to declare an option by placing it into `config' rather than `options'!";
          in
          throw "The option `${showOption (prefix ++ u.prefix)}' does not exist. Definition values:${showDefs [ u ]}${hint}"
        else
          null;
      checked = builtins.seq checkUnmatched;
    in
    {
      options = checked merged.options;
      config = checked (removeAttrs config [ "_module" ]);
      _module = config._module;
      type = "configuration";
      _type = "configuration";
      inherit class;
      extendModules =
        {
          modules ? [ ],
          specialArgs ? { },
          prefix ? evalArgs.prefix or [ ],
        }:
        evalModules (
          evalArgs
          // {
            modules = (evalArgs.modules or [ ]) ++ modules;
            specialArgs = (evalArgs.specialArgs or { }) // specialArgs;
            inherit prefix;
          }
        );
    };

  # ---------------------------------------------------- option renaming etc.

  mkAliasDefinitions = opt: mkIf opt.isDefined (mkOverride opt.highestPrio (mkMerge opt.definitions));

  renamed =
    warn: from: to:
    { options, config, ... }:
    let
      fromOpt = lib.getAttrFromPath from options;
      message = "The option `${showOption from}' defined in ${lib.showFiles fromOpt.files} has been renamed to `${showOption to}'.";
    in
    {
      options = lib.setAttrByPath from (
        lib.mkOption {
          type = lib.types.unspecified;
          visible = false;
          description = "Alias of `${showOption to}'.";
          apply = _: lib.getAttrFromPath to config;
        }
      );
      config = lib.setAttrByPath to (
        mkIf fromOpt.isDefined (
          (if warn then lib.warn message else x: x) (mkOverride fromOpt.highestPrio (mkMerge fromOpt.definitions))
        )
      );
    };
in
{
  inherit
    mkIf
    mkMerge
    mkOverride
    mkOrder
    pushDownProperties
    mergeDefinitions
    evalModules
    mkAliasDefinitions
    defaultOverridePriority
    defaultOrderPriority
    ;
  defaultPriority = defaultOverridePriority;
  dischargeProperties = v: map (p: p.value) (peel 100 null v);

  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkImageMediaOverride = mkOverride 60;
  mkForce = mkOverride 50;
  mkVMOverride = mkOverride 10;
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;

  mkRenamedOptionModule = renamed true;
  mkAliasOptionModule = renamed false;
  mkRemovedOptionModule =
    path: why:
    { options, ... }:
    {
      options = lib.setAttrByPath path (
        lib.mkOption {
          type = lib.types.raw;
          visible = false;
          apply = _: throw "The option `${showOption path}' can no longer be used since it's been removed. ${why}";
        }
      );
      config.assertions = [
        {
          assertion = !(lib.getAttrFromPath path options).isDefined;
          message = "The option definition `${showOption path}' in ${lib.showFiles (lib.getAttrFromPath path options).files} no longer has any effect; please remove it.\n${why}";
        }
      ];
    };
}
