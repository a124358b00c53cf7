# Declares every guest option listed in options.json under `microvm.*`, with
# the upstream name, type (from the JSON type records, nested submodules and
# groups included) and default. Defaults that upstream computes (`default.text`
# in the JSON, or no literal default) come from ./standin-defaults.nix.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  schema = import ./schema.nix;
  computed = import ./standin-defaults.nix { inherit config lib pkgs; };

  inherit (lib) types;

  simpleTypes = {
    inherit (types)
      bool
      int
      float
      number
      str
      nonEmptyStr
      singleLineStr
      path
      pathInStore
      package
      unsignedInt
      unsignedInt8
      unsignedInt16
      unsignedInt32
      positiveInt
      attrs
      unspecified
      anything
      raw
      pkgs
      deferredModule
      ;
  };

  # "strings concatenated with \"\\n\"" -> "\n"
  separatorOf =
    where: description:
    let
      m = builtins.match "strings concatenated with (\".*\")" description;
    in
    if m != null then
      builtins.fromJSON (builtins.head m)
    else if description == "Concatenated string" then
      ""
    else
      throw "microvm stand-in: cannot read the separator of `${where}' from `${description}'";

  # The freeform type of an "open submodule of (X)" keeps X as description.
  freeformTypeOf =
    description:
    let
      m = builtins.match "open submodule of [(]?([^)]*)[)]?" description;
    in
    types.anything
    // {
      description = if m == null then "anything" else builtins.head m;
      descriptionClass = null;
    };

  toType =
    where: t:
    let
      n = t.name;
      nested = t.nested or { };
    in
    if n == "enum" then
      types.enum t.values
    else if n == "listOf" then
      types.listOf (toType where nested.elemType)
    else if n == "nonEmptyListOf" then
      types.nonEmptyListOf (toType where nested.elemType)
    else if n == "attrsOf" then
      types.attrsOf (toType where nested.elemType)
    else if n == "lazyAttrsOf" then
      types.lazyAttrsOf (toType where nested.elemType)
    else if n == "nullOr" then
      types.nullOr (toType where nested.elemType)
    else if n == "either" then
      types.either (toType where nested.left) (toType where nested.right)
    else if n == "uniq" || n == "unique" then
      types.uniq (toType where nested.elemType)
    else if n == "separatedString" then
      types.separatedString (separatorOf where t.description)
    else if n == "submodule" then
      let
        opts = t.options or { };
      in
      types.submodule (
        {
          options = toOptions null opts;
        }
        // lib.optionalAttrs (opts ? _freeformOptions) { freeformType = freeformTypeOf t.description; }
      )
    else
      simpleTypes.${n}
        or (throw "microvm stand-in: option `${where}' has type `${n}' (${t.description}), which nixos-modules/microvm/options.nix does not know yet");

  # `path` is the option path below `microvm` for top-level options (where
  # stand-in defaults may apply), null inside submodules.
  toOptions =
    path: entries:
    builtins.mapAttrs (
      name: e:
      let
        sub = if path == null then null else path ++ [ name ];
      in
      if e ? group then toOptions sub e.group else toOption sub name e
    ) (removeAttrs entries [ "_freeformOptions" ]);

  toOption =
    path: name: e:
    let
      key = if path == null then null else lib.concatStringsSep "." path;
      where = if key == null then "<submodule>.${name}" else "microvm.${key}";
      d = e.default or null;
      fromText = lib.optionalAttrs (d != null && d ? text) { defaultText = lib.literalExpression d.text; };
      default =
        if key != null && computed ? ${key} then
          { default = computed.${key}; } // fromText
        else if d == null then
          { }
        else if d ? value then
          { default = d.value; }
        else
          fromText
          // {
            default = throw "microvm stand-in: there is no stand-in default for `${where}' (upstream: ${d.text}); add one to nixos-modules/microvm/standin-defaults.nix";
          };
    in
    lib.mkOption (
      {
        type = toType where e.type;
        description = "microvm.nix guest option `${where}' (declared by nixgen's stand-in from options.json).";
      }
      // lib.optionalAttrs (e.readOnly or false) { readOnly = true; }
      // lib.optionalAttrs (e.internal or false) { internal = true; }
      // default
    );
in
{
  # storeDisk is config.nix's own (a stand-in image, null unless storeOnDisk).
  options.microvm = toOptions [ ] (removeAttrs schema [ "storeDisk" ]);
}
