{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.flake-utils.url = "github:numtide/flake-utils";

  outputs = { self, nixpkgs, microvm, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system: {
      packages.hello = nixpkgs.legacyPackages.${system}.hello;
    })
    // {
      nixosConfigurations = {
        static = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            { networking.hostName = "static"; microvm.vcpu = 1; }
          ];
        };
      } // (import ./more-guests.nix { inherit nixpkgs microvm; });
    };
}
