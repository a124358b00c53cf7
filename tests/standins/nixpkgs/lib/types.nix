# Option types. Names, descriptions and description classes follow nixpkgs,
# so that `type.description` of a declared option reads exactly like the
# upstream option documentation (e.g. "list of (submodule)").
lib:
let
  inherit (builtins)
    isAttrs
    isList
    isString
    isInt
    isBool
    isFloat
    length
    filter
    concatLists
    attrNames
    elem
    ;
  inherit (lib.options)
    showOption
    showFiles
    showDefs
    mergeEqualOption
    mergeOneOption
    mergeDefaultOption
    ;

  mkOptionType =
    {
      name,
      description ? null,
      descriptionClass ? null,
      check ? (_: true),
      merge ? mergeDefaultOption,
      emptyValue ? { },
      getSubOptions ? (_: { }),
      getSubModules ? null,
      substSubModules ? (_: null),
      nestedTypes ? { },
      functor ? null,
      deprecationMessage ? null,
    }:
    {
      _type = "option-type";
      inherit
        name
        descriptionClass
        check
        merge
        emptyValue
        getSubOptions
        getSubModules
        substSubModules
        nestedTypes
        deprecationMessage
        ;
      description = if description == null then name else description;
      functor =
        if functor == null then
          {
            inherit name;
            type = null;
            payload = null;
          }
        else
          functor;
    };

  isType = type: x: (x._type or "") == type;

  # "list of string" but "list of (submodule)": the element's description is
  # parenthesised unless its class is one the caller can read unbracketed.
  phrase =
    unparenthesize: t:
    if unparenthesize (t.descriptionClass or null) then t.description else "(${t.description})";

  showEnumValue =
    v:
    if isString v then
      ''"${v}"''
    else if isInt v then
      toString v
    else if isBool v then
      lib.boolToString v
    else
      "<${builtins.typeOf v}>";

  intBetween =
    name: description: lo: hi:
    mkOptionType {
      inherit name description;
      descriptionClass = "nonRestrictiveClause";
      check = x: isInt x && x >= lo && x <= hi;
      merge = mergeEqualOption;
    };
  unsignedBits =
    bits: max:
    intBetween "unsignedInt${toString bits}"
      "${toString bits} bit unsigned integer; between 0 and ${toString max} (both inclusive)"
      0
      max;
  signedBits =
    bits: min: max:
    intBetween "signedInt${toString bits}"
      "${toString bits} bit signed integer; between ${toString min} and ${toString max} (both inclusive)"
      min
      max;

  types = rec {
    inherit isType mkOptionType;
    isOptionType = isType "option-type";

    raw = mkOptionType {
      name = "raw";
      description = "raw value";
      descriptionClass = "noun";
      merge = mergeOneOption;
    };

    unspecified = mkOptionType {
      name = "unspecified";
      description = "unspecified value";
      descriptionClass = "noun";
    };

    # Anything at all. Attribute sets are merged attribute by attribute
    # (priorities and mkIf work inside them), lists are concatenated (nixpkgs
    # would insist on equal lists; concatenating is what the declared NixOS
    # list options this stands in for do), functions are merged pointwise,
    # everything else must be defined once or identically.
    anything = mkOptionType {
      name = "anything";
      description = "anything";
      descriptionClass = "noun";
      merge =
        loc: defs:
        let
          kindOf =
            v: if isAttrs v && (v ? outPath || v ? __toString || v ? __functor) then "opaque" else builtins.typeOf v;
          kinds = lib.unique (map (d: kindOf d.value) defs);
          kind = builtins.head kinds;
        in
        if length kinds > 1 then
          throw "The option `${showOption loc}' has conflicting definition values:${showDefs defs}"
        else if kind == "set" then
          (attrsOf anything).merge loc defs
        else if kind == "list" then
          (listOf anything).merge loc defs
        else if kind == "lambda" then
          x: anything.merge (loc ++ [ "<function body>" ]) (map (d: d // { value = d.value x; }) defs)
        else if kind == "opaque" then
          mergeOneOption loc defs
        else
          mergeEqualOption loc defs;
    };

    bool = mkOptionType {
      name = "bool";
      description = "boolean";
      descriptionClass = "noun";
      check = isBool;
      merge = mergeEqualOption;
    };

    boolByOr = mkOptionType {
      name = "boolByOr";
      description = "boolean (merged using or)";
      descriptionClass = "noun";
      check = isBool;
      merge = _: defs: builtins.any (d: d.value) defs;
    };

    int = mkOptionType {
      name = "int";
      description = "signed integer";
      descriptionClass = "noun";
      check = isInt;
      merge = mergeEqualOption;
    };

    ints = {
      between =
        lo: hi:
        intBetween "intBetween" "integer between ${toString lo} and ${toString hi} (both inclusive)" lo hi;
      unsigned = mkOptionType {
        name = "unsignedInt";
        description = "unsigned integer, meaning >=0";
        descriptionClass = "nonRestrictiveClause";
        check = x: isInt x && x >= 0;
        merge = mergeEqualOption;
      };
      positive = mkOptionType {
        name = "positiveInt";
        description = "positive integer, meaning >0";
        descriptionClass = "nonRestrictiveClause";
        check = x: isInt x && x > 0;
        merge = mergeEqualOption;
      };
      u8 = unsignedBits 8 255;
      u16 = unsignedBits 16 65535;
      u32 = unsignedBits 32 4294967295;
      s8 = signedBits 8 (-128) 127;
      s16 = signedBits 16 (-32768) 32767;
      s32 = signedBits 32 (-2147483648) 2147483647;
    };
    unsignedInt = ints.unsigned;
    positiveInt = ints.positive;
    unsignedInt8 = ints.u8;
    unsignedInt16 = ints.u16;
    unsignedInt32 = ints.u32;
    port = ints.u16;

    float = mkOptionType {
      name = "float";
      description = "floating point number";
      descriptionClass = "noun";
      check = isFloat;
      merge = mergeEqualOption;
    };
    number = either int float;

    str = mkOptionType {
      name = "str";
      description = "string";
      descriptionClass = "noun";
      check = isString;
      merge = mergeEqualOption;
    };

    nonEmptyStr = mkOptionType {
      name = "nonEmptyStr";
      description = "non-empty string";
      descriptionClass = "noun";
      check = x: isString x && builtins.match "[[:space:]]*" x == null;
      merge = mergeEqualOption;
    };

    singleLineStr = mkOptionType {
      name = "singleLineStr";
      description = "(optionally newline-terminated) single-line string";
      descriptionClass = "noun";
      check = x: isString x && !(lib.hasInfix "\n" (lib.removeSuffix "\n" x));
      merge = mergeEqualOption;
    };

    strMatching =
      pattern:
      mkOptionType {
        name = "strMatching ${builtins.toJSON pattern}";
        description = "string matching the pattern ${pattern}";
        descriptionClass = "noun";
        check = x: isString x && builtins.match pattern x != null;
        merge = mergeEqualOption;
      };

    separatedString =
      sep:
      mkOptionType {
        name = "separatedString";
        description =
          if sep == "" then "Concatenated string" else "strings concatenated with ${builtins.toJSON sep}";
        descriptionClass = "noun";
        check = isString;
        merge = _: defs: builtins.concatStringsSep sep (map (d: d.value) defs);
        functor = {
          name = "separatedString";
          type = separatedString;
          payload = sep;
        };
      };
    lines = separatedString "\n";
    commas = separatedString ",";
    envVar = separatedString ":";

    passwdEntry =
      t:
      addCheck t (x: isString x && builtins.match ".*[:\n].*" x == null)
      // {
        name = "passwdEntry ${t.name}";
        description = "${t.description}, not containing newlines or colons";
      };

    attrs = mkOptionType {
      name = "attrs";
      description = "attribute set";
      check = isAttrs;
      merge = _: defs: builtins.foldl' (acc: d: acc // d.value) { } defs;
      emptyValue = {
        value = { };
      };
    };

    package = mkOptionType {
      name = "package";
      description = "package";
      descriptionClass = "noun";
      check = x: lib.isDerivation x || lib.isStorePath x;
      merge =
        loc: defs:
        let
          v = mergeOneOption loc defs;
        in
        if lib.isDerivation v then v else lib.toDerivation v;
    };

    shellPackage = package // {
      check = x: lib.isDerivation x && x ? shellPath;
    };

    path = mkOptionType {
      name = "path";
      description = "absolute path";
      descriptionClass = "noun";
      check = x: lib.isStringLike x && builtins.substring 0 1 (toString x) == "/";
      merge = mergeEqualOption;
    };

    pathInStore = mkOptionType {
      name = "pathInStore";
      description = "path in the Nix store";
      descriptionClass = "noun";
      check = x: lib.isStringLike x && lib.hasPrefix builtins.storeDir (toString x);
      merge = mergeEqualOption;
    };

    pkgs = mkOptionType {
      name = "pkgs";
      description = "Nixpkgs package set";
      descriptionClass = "noun";
      check = x: isAttrs x && (x._type or null) == "pkgs";
      merge = lib.options.mergeUniqueOption {
        message = "A Nixpkgs pkgs set can not be merged with another pkgs set.";
      };
      nestedTypes.elemType = attrs;
    };

    optionType = mkOptionType {
      name = "optionType";
      description = "optionType";
      descriptionClass = "noun";
      check = isType "option-type";
      merge = _: defs: (lib.last defs).value;
    };

    listOf =
      elemType:
      mkOptionType {
        name = "listOf";
        description = "list of ${phrase (c: c == "noun" || c == "composite") elemType}";
        descriptionClass = "composite";
        check = isList;
        merge =
          loc: defs:
          map (x: x.value) (
            filter (x: x ? value) (
              concatLists (
                lib.imap1 (
                  n: def:
                  lib.imap1 (
                    m: v:
                    (lib.modules.mergeDefinitions (loc ++ [ "[definition ${toString n}-entry ${toString m}]" ])
                      elemType
                      [
                        {
                          inherit (def) file;
                          value = v;
                        }
                      ]
                    ).optionalValue
                  ) def.value
                ) defs
              )
            )
          );
        emptyValue = {
          value = [ ];
        };
        getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "*" ]);
        getSubModules = elemType.getSubModules;
        substSubModules = m: listOf (elemType.substSubModules m);
        nestedTypes.elemType = elemType;
        functor = {
          name = "listOf";
          type = listOf;
          payload = elemType;
        };
      };

    nonEmptyListOf =
      elemType:
      let
        list = addCheck (listOf elemType) (l: l != [ ]);
      in
      list
      // {
        description = "non-empty ${list.description}";
        emptyValue = { };
        substSubModules = m: nonEmptyListOf (elemType.substSubModules m);
      };

    attrsOf = attrsWith { };
    lazyAttrsOf = attrsWith { lazy = true; };

    attrsWith =
      {
        lazy ? false,
        placeholder ? "name",
      }:
      elemType:
      let
        mergeAttr =
          loc: defs: name:
          lib.modules.mergeDefinitions (loc ++ [ name ]) elemType (
            builtins.concatMap (
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
            ) defs
          );
      in
      mkOptionType {
        name = if lazy then "lazyAttrsOf" else "attrsOf";
        description =
          (if lazy then "lazy attribute set of " else "attribute set of ")
          + phrase (c: c == "noun" || c == "composite") elemType;
        descriptionClass = "composite";
        check = isAttrs;
        merge =
          loc: defs:
          let
            pushed = builtins.concatMap (
              d:
              map (v: {
                inherit (d) file;
                value = v;
              }) (lib.modules.pushDownProperties d.value)
            ) defs;
            names = attrNames (builtins.foldl' (acc: d: acc // d.value) { } pushed);
            merged = lib.genAttrs names (mergeAttr loc pushed);
          in
          if lazy then
            builtins.mapAttrs (_: r: r.mergedValue) merged
          else
            builtins.mapAttrs (_: r: r.mergedValue) (lib.filterAttrs (_: r: r.isDefined) merged);
        emptyValue = {
          value = { };
        };
        getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "<${placeholder}>" ]);
        getSubModules = elemType.getSubModules;
        substSubModules = m: attrsWith { inherit lazy placeholder; } (elemType.substSubModules m);
        nestedTypes.elemType = elemType;
        functor = {
          name = "attrsWith";
          type = attrsWith;
          payload = { inherit lazy placeholder; };
        };
      };

    uniq = unique { message = ""; };
    unique =
      { message }:
      type:
      type
      // {
        merge = lib.options.mergeUniqueOption { inherit message; };
      };

    nullOr =
      elemType:
      mkOptionType {
        name = "nullOr";
        description = "null or ${phrase (c: c == "noun" || c == "conjunction") elemType}";
        descriptionClass = "conjunction";
        check = x: x == null || elemType.check x;
        merge =
          loc: defs:
          let
            nulls = filter (d: d.value == null) defs;
          in
          if length nulls == length defs then
            null
          else if nulls != [ ] then
            throw "The option `${showOption loc}' is defined both null and not null, in ${showFiles (map (d: d.file) defs)}."
          else
            elemType.merge loc defs;
        emptyValue = {
          value = null;
        };
        getSubOptions = elemType.getSubOptions;
        getSubModules = elemType.getSubModules;
        substSubModules = m: nullOr (elemType.substSubModules m);
        nestedTypes.elemType = elemType;
        functor = {
          name = "nullOr";
          type = nullOr;
          payload = elemType;
        };
      };

    functionTo =
      elemType:
      mkOptionType {
        name = "functionTo";
        description = "function that evaluates to a(n) ${phrase (c: c == "noun" || c == "composite") elemType}";
        descriptionClass = "composite";
        check = lib.isFunction;
        merge =
          loc: defs: arg:
          (lib.modules.mergeDefinitions (loc ++ [ "<function body>" ]) elemType (
            map (d: {
              inherit (d) file;
              value = d.value arg;
            }) defs
          )).mergedValue;
        getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "<function body>" ]);
        getSubModules = elemType.getSubModules;
        substSubModules = m: functionTo (elemType.substSubModules m);
        nestedTypes.elemType = elemType;
      };

    enum =
      values:
      mkOptionType {
        name = "enum";
        description =
          if values == [ ] then
            "impossible (empty enum)"
          else if length values == 1 then
            "value ${showEnumValue (builtins.head values)} (singular enum)"
          else
            "one of ${builtins.concatStringsSep ", " (map showEnumValue values)}";
        descriptionClass = if length values < 2 then "noun" else "conjunction";
        check = x: elem x values;
        merge = mergeEqualOption;
        functor = {
          name = "enum";
          type = enum;
          payload = values;
        };
      };

    either =
      t1: t2:
      mkOptionType {
        name = "either";
        description = "${phrase (c: c == "noun" || c == "conjunction") t1} or ${
          phrase (c: c == "noun" || c == "conjunction" || c == "composite") t2
        }";
        descriptionClass = "conjunction";
        check = x: t1.check x || t2.check x;
        merge =
          loc: defs:
          let
            values = map (d: d.value) defs;
          in
          if builtins.all t1.check values then
            t1.merge loc defs
          else if builtins.all t2.check values then
            t2.merge loc defs
          else
            mergeOneOption loc defs;
        nestedTypes = {
          left = t1;
          right = t2;
        };
      };

    oneOf =
      ts:
      if ts == [ ] then
        throw "types.oneOf needs at least one type"
      else
        builtins.foldl' either (builtins.head ts) (builtins.tail ts);

    coercedTo =
      coercedType: coerceFunc: finalType:
      mkOptionType {
        name = "coercedTo";
        description = "${phrase (c: c == "noun") finalType} or ${phrase (c: c == "noun") coercedType} convertible to it";
        check = x: (coercedType.check x && finalType.check (coerceFunc x)) || finalType.check x;
        merge =
          loc: defs:
          finalType.merge loc (
            map (
              d:
              d
              // {
                value =
                  if !(finalType.check d.value) && coercedType.check d.value then coerceFunc d.value else d.value;
              }
            ) defs
          );
        getSubOptions = finalType.getSubOptions;
        getSubModules = finalType.getSubModules;
        substSubModules = m: coercedTo coercedType coerceFunc (finalType.substSubModules m);
        nestedTypes = {
          inherit coercedType finalType;
        };
      };

    addCheck = t: check: t // { check = x: t.check x && check x; };

    deferredModule = mkOptionType {
      name = "deferredModule";
      description = "module";
      descriptionClass = "noun";
      check = x: isAttrs x || lib.isFunction x || builtins.isPath x;
      merge = _: defs: {
        imports = map (d: {
          _file = d.file;
          imports = [ d.value ];
        }) defs;
      };
    };

    submodule =
      modules:
      submoduleWith {
        shorthandOnlyDefinesConfig = true;
        modules = lib.toList modules;
      };

    submoduleWith =
      {
        modules,
        specialArgs ? { },
        shorthandOnlyDefinesConfig ? false,
        description ? null,
        class ? null,
      }@attrs:
      let
        defToModule =
          def:
          if shorthandOnlyDefinesConfig && isAttrs def.value && !(lib.isFunction def.value) then
            {
              _file = def.file;
              config = def.value;
            }
          else
            {
              _file = def.file;
              imports = [ def.value ];
            };
        evalAt =
          loc: defs:
          lib.evalModules {
            modules =
              modules
              ++ [
                {
                  _file = "<nixgen-standin>/lib/types.nix";
                  config._module.args.name = lib.mkOptionDefault (if loc == [ ] then "<name>" else lib.last loc);
                }
              ]
              ++ map defToModule defs;
            inherit specialArgs class;
            prefix = loc;
          };
        freeformType = (evalAt [ ] [ ])._module.freeformType;
      in
      mkOptionType {
        name = "submodule";
        description =
          if description != null then
            description
          else if freeformType == null then
            "submodule"
          else
            "open submodule of ${phrase (c: c == "noun" || c == "composite") freeformType}";
        check = x: isAttrs x || lib.isFunction x || builtins.isPath x;
        merge = loc: defs: (evalAt loc defs).config;
        emptyValue = {
          value = { };
        };
        getSubOptions = prefix: (evalAt prefix [ ]).options;
        getSubModules = modules;
        substSubModules = m: submoduleWith (attrs // { modules = m; });
        nestedTypes = lib.optionalAttrs (freeformType != null) { inherit freeformType; };
        functor = {
          name = "submoduleWith";
          type = submoduleWith;
          payload = attrs;
        };
      };
  };
in
types
