{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }:
    let
      names = [ "worker1" "worker2" "worker3" ];
      mkWorker = name: nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          { networking.hostName = name; microvm.mem = 512; }
        ];
      };
    in {
      nixosConfigurations = nixpkgs.lib.genAttrs names mkWorker;
    };
}
