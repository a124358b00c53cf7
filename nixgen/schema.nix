# microvm.nix's option declarations as data: the schema nixgen checks names,
# enum values and types against before Nix runs.
#
# Only the declarations are evaluated, with nixpkgs' own module system: no
# package is built and no NixOS module is loaded. Option trees become
#   { <name> = { type; default; readOnly; internal; }; <namespace> = { group = { … }; }; }
# where a type is { name; description; values? (enum); nested? (element
# types); options? (a submodule's options) }, and a default is
# { value = …; } when it is plain data, { text = "…"; } when it is a Nix
# expression, and null when there is none.
#
# Used by scripts/microvm-options.py (a microvm.nix checkout and nixpkgs'
# lib/ on disk; it also compares the walk with nixpkgs' optionAttrSetToDocList,
# `docNames`) and by nixgen/lockschema.py (the flake's locked inputs).
{
  # nixpkgs' lib (lib/default.nix imported)
  lib,
  # a microvm.nix source tree (with nixos-modules/{microvm,host})
  microvm,
}:
let
  inherit (lib)
    filterAttrs
    isOption
    mapAttrs
    optionalAttrs
    ;

  # What the declarations may touch while they are read: `pkgs` only lazily
  # (package defaults carry defaultText or are rendered as text).
  stubPkgs = {
    path = "/nonexistent/nixpkgs";
    stdenv.hostPlatform = {
      system = "x86_64-linux";
      isLinux = true;
      isDarwin = false;
      isx86_64 = true;
      isAarch64 = false;
    };
  };

  declarations =
    modules:
    (lib.evalModules {
      modules = modules ++ [
        {
          config._module.args.pkgs = stubPkgs;
          config._module.check = false;
        }
      ];
      specialArgs.modulesPath = "/nonexistent/nixos/modules";
    }).options.microvm;

  # A default that can be written as JSON without evaluating Nix code that
  # needs a real NixOS (derivations, functions, config lookups) is a value.
  plainData =
    v:
    let
      t = builtins.typeOf v;
    in
    if t == "set" then
      !(v ? _type) && !(lib.isDerivation v) && builtins.all plainData (builtins.attrValues v)
    else if t == "list" then
      builtins.all plainData v
    else
      builtins.elem t [
        "int"
        "bool"
        "string"
        "null"
        "float"
      ];

  tried = v: builtins.tryEval (builtins.deepSeq v v);

  renderText = v: (lib.options.renderOptionValue v).text;

  describeDefault =
    opt:
    if opt ? defaultText then
      { text = if builtins.isAttrs opt.defaultText then opt.defaultText.text else toString opt.defaultText; }
    else if !(opt ? default) then
      null
    else
      let
        r = tried (plainData opt.default);
      in
      if r.success && r.value then
        { value = opt.default; }
      else
        let
          rendered = builtins.tryEval (renderText opt.default);
        in
        if rendered.success then { text = rendered.value; } else { text = "<computed>"; };

  # A submodule is described by its options (its nested types are the
  # freeform type, which may be recursive, e.g. a JSON value).
  describeType =
    type:
    let
      submodule = type.name == "submodule" || type.name == "submoduleWith";
      # Older nixpkgs (and the test stand-in) have no _freeformOptions: mark
      # an open submodule the same way whatever the version.
      freeform = submodule && (type.nestedTypes.freeformType or null) != null;
      subOptions =
        if submodule then
          type.getSubOptions [ ] // optionalAttrs freeform { _freeformOptions = { }; }
        else
          { };
      # nixpkgs before 24.05 keeps an enum's values as the payload itself.
      payload = type.functor.payload or null;
      values = if builtins.isList payload then payload else payload.values or null;
    in
    {
      inherit (type) name description;
    }
    // optionalAttrs (type.name == "enum" && values != null) { inherit values; }
    // optionalAttrs (!submodule && (type.nestedTypes or { }) != { }) {
      nested = mapAttrs (_: describeType) type.nestedTypes;
    }
    // optionalAttrs (subOptions != { }) { options = describeTree subOptions; };

  describeOption = opt: {
    type = describeType opt.type;
    default = describeDefault opt;
    readOnly = opt.readOnly or false;
    internal = opt.internal or false;
  };

  describeTree =
    tree:
    mapAttrs (_: v: if isOption v then describeOption v else { group = describeTree v; }) (
      filterAttrs (n: v: n != "_module" && (isOption v || builtins.isAttrs v)) tree
    );
  # Older microvm.nix releases kept the host module in one file (host.nix).
  firstOf = paths: builtins.head (builtins.filter builtins.pathExists paths ++ [ null ]);
  hostModule = firstOf [
    (microvm + "/nixos-modules/host")
    (microvm + "/nixos-modules/host.nix")
  ];

  guest = declarations [ (microvm + "/nixos-modules/microvm") ];
  host = if hostModule == null then { } else declarations [ hostModule ];

  # nixpkgs' own list of the documented options, by name: the generator checks
  # that the walk above found the same ones.
  docNames = tree: map (o: o.name) (lib.optionAttrSetToDocList tree);
in
{
  guest = describeTree guest;
  host = describeTree host;
  docNames = {
    guest = docNames guest;
    host = docNames host;
  };
}
