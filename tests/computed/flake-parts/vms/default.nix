# A flake-parts module: more guests under flake.nixosConfigurations
{ inputs, ... }:
{
  flake.nixosConfigurations.builder = inputs.nixpkgs.lib.nixosSystem {
    system = "x86_64-linux";
    modules = [
      inputs.microvm.nixosModules.microvm
      ./builder.nix
    ];
  };
}
