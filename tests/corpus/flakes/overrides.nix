{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }:
    let
      lib = nixpkgs.lib;
      shared = {
        microvm.shares = [
          { tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; }
        ];
      };
    in {
      nixosConfigurations.layered = lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          shared
          { microvm.mem = 512; }
          { microvm.mem = lib.mkForce 1024; networking.hostName = "layered"; }
          ({ ... }: { imports = [ shared ]; })
        ];
      };
    };
}
