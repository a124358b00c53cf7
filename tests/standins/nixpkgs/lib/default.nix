# nixgen test stand-in for nixpkgs' `lib` (written for nixgen's test-suite;
# not nixpkgs code). Every file below is `lib: { ... }` and sees the final,
# merged `lib`, so helpers may use each other freely.
let
  parts = {
    trivial = import ./trivial.nix lib;
    lists = import ./lists.nix lib;
    attrsets = import ./attrsets.nix lib;
    strings = import ./strings.nix lib;
    generators = import ./generators.nix lib;
    options = import ./options.nix lib;
    modules = import ./modules.nix lib;
    systems = import ./systems.nix lib;
  };

  lib =
    parts.trivial
    // parts.lists
    // parts.attrsets
    // parts.strings
    // parts.options
    // parts.modules
    // parts
    // {
      types = import ./types.nix lib;
      inherit (parts.generators) toPretty;
      version = "25.11-nixgen-standin";
      isNixgenStandin = true;
    };
in
lib
