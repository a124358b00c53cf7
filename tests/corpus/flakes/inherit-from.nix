{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }:
    let
      settings = { system = "x86_64-linux"; mem = 2048; hostName = "inh"; };
      inherit (settings) system;
    in {
      nixosConfigurations.inh = nixpkgs.lib.nixosSystem {
        inherit system;
        inherit (nixpkgs) lib;
        modules = [
          microvm.nixosModules.microvm
          {
            networking = { inherit (settings) hostName; };
            microvm = {
              inherit (settings) mem;
              hypervisor = "qemu";
            };
          }
        ];
      };
    };
}
