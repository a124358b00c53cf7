# A snowfall/std-style mkFlake: every folder systems/<system>/<name>/ is a
# configuration, its default.nix the module of its own.
{ nixpkgs, microvm, ... }:
{ src }:
let
  inherit (builtins) attrNames readDir listToAttrs concatMap;
  systems = attrNames (readDir (src + "/systems"));
  hostsOf = system: attrNames (readDir (src + "/systems/${system}"));
  mkSystem = system: name: {
    inherit name;
    value = nixpkgs.lib.nixosSystem {
      inherit system;
      modules = [
        microvm.nixosModules.microvm
        (src + "/systems/${system}/${name}")
        { networking.hostName = name; }
      ];
    };
  };
in
{
  nixosConfigurations = listToAttrs (
    concatMap (system: map (mkSystem system) (hostsOf system)) systems
  );
}
