# `mkFlake { inputs; } module`, as flake-parts' is used: the module (an
# attribute set, or a function of { inputs, self, lib, config, withSystem,
# ... }) and the modules it lists in `imports` give
# - `flake`: attributes of the flake's outputs (nixosConfigurations, ...),
#   merged across modules (sets recursively, like the module system's lazy
#   attribute sets);
# - `systems` and `perSystem`: a function of { system, pkgs, inputs', self',
#   ... } whose packages, apps, checks, devShells and formatter become
#   `<output>.<system>`.
# Written for nixgen's tests; it is not flake-parts' code.
{ inputs, ... }@args:
module:
let
  inherit (builtins)
    attrNames
    concatMap
    foldl'
    isAttrs
    isFunction
    isList
    listToAttrs
    ;
  self = args.self or inputs.self;
  lib = inputs.nixpkgs.lib or { };
  merge =
    a: b:
    foldl' (
      acc: name:
      acc
      // {
        ${name} =
          if acc ? ${name} && isAttrs acc.${name} && isAttrs b.${name} && !(b.${name} ? type) then
            merge acc.${name} b.${name}
          else
            b.${name};
      }
    ) a (attrNames b);
  moduleArgs = {
    inherit inputs self lib;
    config = result;
    withSystem = system: f: f (perSystemArgs system);
  };
  load =
    m:
    let
      value = if isFunction m then m moduleArgs else if isAttrs m then m else import m;
      called = if isFunction value then value moduleArgs else value;
    in
    [ called ] ++ concatMap load (called.imports or [ ]);
  modules = load module;
  flake = foldl' merge { } (map (m: m.flake or { }) modules);
  systems = concatMap (m: m.systems or [ ]) modules;
  perSystemArgs = system: {
    inherit system inputs self lib;
    pkgs = inputs.nixpkgs.legacyPackages.${system} or { };
    inputs' = builtins.mapAttrs (_: i: if isAttrs i then i // { packages = i.packages.${system} or { }; } else i) inputs;
    self' = { };
  };
  perSystem =
    system:
    foldl' merge { } (
      map (
        m:
        let
          f = m.perSystem or { };
        in
        if isFunction f then f (perSystemArgs system) else f
      ) modules
    );
  outputsPerSystem = [
    "packages"
    "apps"
    "checks"
    "devShells"
    "formatter"
  ];
  transposed = listToAttrs (
    map (output: {
      name = output;
      value = listToAttrs (
        concatMap (
          system:
          let
            here = perSystem system;
          in
          if here ? ${output} then
            [
              {
                name = system;
                value = here.${output};
              }
            ]
          else
            [ ]
        ) systems
      );
    }) (builtins.filter (o: builtins.any (s: (perSystem s) ? ${o}) systems) outputsPerSystem)
  );
  result = merge transposed flake;
in
assert isList systems;
result
