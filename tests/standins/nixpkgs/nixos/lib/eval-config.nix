# `lib.nixosSystem` of the stand-in: evaluates the caller's modules together
# with a small base set of NixOS modules (modules/base.nix).
{ lib, pkgsFor }:
{
  system ? null,
  modules,
  specialArgs ? { },
  pkgs ? null,
  ...
}:
let
  eval = lib.evalModules {
    modules = [
      (import ../modules/base.nix { inherit pkgsFor; })
    ]
    ++ lib.optional (system != null) {
      _file = "<nixgen-standin>/nixos/lib/eval-config.nix";
      nixpkgs.system = system;
    }
    ++ lib.optional (pkgs != null) {
      _file = "<nixgen-standin>/nixos/lib/eval-config.nix";
      nixpkgs.pkgs = pkgs;
    }
    # As nixpkgs' eval-config.nix does, the caller's own modules are a module
    # argument (`config._module.args.modules`): nixgen's evaluator reads the
    # places of inline modules' definitions there.
    ++ [
      {
        _file = "<nixgen-standin>/nixos/lib/eval-config.nix";
        _module.args.modules = modules;
      }
    ]
    ++ modules;
    specialArgs = {
      modulesPath = toString ../modules;
    }
    // specialArgs;
    class = "nixos";
  };
in
eval
// {
  inherit (eval._module.args) pkgs;
}
