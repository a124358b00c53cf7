{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      mkVm =
        name: module:
        nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            ./defaults.nix
            module
          ];
        };
    in
    {
      nixosConfigurations = builtins.mapAttrs mkVm {
        app = ./vms/app.nix;
        worker = ./vms/worker.nix;
      };
    };
}
