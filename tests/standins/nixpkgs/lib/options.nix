# Option declarations and the merge helpers types use.
lib:
let
  inherit (builtins)
    length
    head
    filter
    concatStringsSep
    attrNames
    isAttrs
    ;
in
rec {
  mkOption =
    {
      type ? null,
      default ? null,
      defaultText ? null,
      example ? null,
      description ? null,
      apply ? null,
      readOnly ? null,
      internal ? null,
      visible ? null,
      relatedPackages ? null,
    }@attrs:
    attrs // { _type = "option"; };

  isOption = x: isAttrs x && (x._type or null) == "option";

  mkEnableOption =
    name:
    mkOption {
      type = lib.types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };

  mkPackageOption =
    pkgs: name:
    {
      default ? [ name ],
      nullable ? false,
      extraDescription ? "",
      example ? null,
      pkgsText ? "pkgs",
    }:
    let
      path = lib.toList default;
      pkg = lib.attrByPath path (throw "mkPackageOption: ${pkgsText}.${concatStringsSep "." path} does not exist") pkgs;
    in
    mkOption {
      type = if nullable then lib.types.nullOr lib.types.package else lib.types.package;
      default = pkg;
      defaultText = literalExpression "${pkgsText}.${concatStringsSep "." path}";
      description = "The ${if builtins.isList name then concatStringsSep "." name else name} package to use.${extraDescription}";
    };

  mkSinkUndeclaredOptions =
    attrs:
    mkOption (
      {
        internal = true;
        visible = false;
        default = false;
        description = "Sink for option definitions.";
        type = lib.types.raw;
        apply = _: throw "Option value is not readable because the option is not declared.";
      }
      // attrs
    );

  literalExpression = text: {
    _type = "literalExpression";
    inherit text;
  };
  literalMD = text: {
    _type = "literalMD";
    inherit text;
  };
  mdDoc = s: s;

  # `a.b."c d"` from [ "a" "b" "c d" ]; the placeholders `*`, `<name>` and
  # `<function body>` stay as they are, every other non-identifier is quoted.
  showOption =
    parts:
    concatStringsSep "." (
      map (
        p:
        if
          builtins.elem p [
            "*"
            "<name>"
            "<function body>"
          ]
        then
          p
        else
          lib.escapeNixIdentifier p
      ) parts
    );

  showFiles = files: concatStringsSep " and " (map (f: "`${toString f}'") files);

  # "\n- In `file': value" per definition; multi-line values go on indented
  # lines below (at most five), values that fail to evaluate are left out.
  showDefs =
    defs:
    lib.concatMapStrings (
      def:
      let
        shown = builtins.tryEval (lib.generators.toPretty { } def.value);
        lines = lib.splitString "\n" shown.value;
        kept = lib.take 5 lines ++ lib.optional (length lines > 5) "...";
        rendered =
          if !shown.success then
            ""
          else if length lines > 1 then
            ":\n    " + concatStringsSep "\n    " kept
          else
            ": " + shown.value;
      in
      "\n- In `${toString def.file}'${rendered}"
    ) defs;

  getValues = map (d: d.value);
  getFiles = map (d: d.file);

  mergeOneOption =
    loc: defs:
    if defs == [ ] then
      throw "The option `${showOption loc}' has no definitions to merge."
    else if length defs == 1 then
      (head defs).value
    else
      throw "The option `${showOption loc}' is defined multiple times while it's expected to be unique.${showDefs defs}";

  mergeUniqueOption =
    {
      message ? "",
    }:
    loc: defs:
    if length defs == 1 then
      (head defs).value
    else
      throw "The option `${showOption loc}' is defined multiple times while it's expected to be unique.\n${message}${showDefs defs}";

  mergeEqualOption =
    loc: defs:
    if defs == [ ] then
      throw "The option `${showOption loc}' has no definitions to merge."
    else if length defs == 1 then
      (head defs).value
    else
      let
        first = head defs;
        differing = filter (d: d.value != first.value) (builtins.tail defs);
      in
      if differing == [ ] then
        first.value
      else
        throw "The option `${showOption loc}' has conflicting definition values:${showDefs ([ first ] ++ differing)}";

  # The fallback merge of `types.unspecified`.
  mergeDefaultOption =
    loc: defs:
    let
      values = getValues defs;
    in
    if length values == 1 then
      head values
    else if builtins.all lib.isFunction values then
      x: mergeDefaultOption (loc ++ [ "<function body>" ]) (map (d: d // { value = d.value x; }) defs)
    else if builtins.all builtins.isList values then
      builtins.concatLists values
    else if builtins.all isAttrs values then
      builtins.foldl' (a: b: a // b) { } values
    else if builtins.all builtins.isBool values then
      builtins.any (x: x) values
    else if builtins.all builtins.isString values then
      lib.concatStrings values
    else
      throw "Cannot merge definitions of `${showOption loc}'. Definition values:${showDefs defs}";

  # A flat list describing every (visible or not) option, recursing into
  # submodules the way nixpkgs' documentation tooling does (`*` for list
  # elements, `<name>` for attribute set values).
  optionAttrSetToDocList = optionAttrSetToDocList' [ ];
  optionAttrSetToDocList' =
    _: options:
    builtins.concatMap (
      name:
      let
        opt = options.${name};
      in
      if isOption opt then
        let
          subOptions = if opt.type ? getSubOptions then opt.type.getSubOptions opt.loc else { };
          entry = {
            name = showOption opt.loc;
            inherit (opt) loc;
            description = opt.description or null;
            declarations = opt.declarations or [ ];
            internal = opt.internal or false;
            visible = opt.visible or true;
            readOnly = opt.readOnly or false;
            type = opt.type.description or "unspecified";
          }
          // lib.optionalAttrs (opt ? defaultText || opt ? default) {
            default = renderOptionValue (opt.defaultText or opt.default);
          }
          // lib.optionalAttrs (opt ? example) { example = renderOptionValue opt.example; };
        in
        [ entry ] ++ optionAttrSetToDocList' opt.loc subOptions
      else if isAttrs opt then
        optionAttrSetToDocList' [ ] opt
      else
        [ ]
    ) (filter (n: n != "_module") (attrNames options));

  renderOptionValue =
    v:
    if
      isAttrs v
      && builtins.elem (v._type or null) [
        "literalExpression"
        "literalMD"
      ]
    then
      v
    else
      literalExpression (lib.generators.toPretty { } v);
}
