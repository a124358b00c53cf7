{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      names = [
        "worker1"
        "worker2"
      ];
      mkWorker =
        name:
        nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            ./common.nix
            {
              networking.hostName = name;
              microvm.vcpu = 2;
            }
            ./vms/${name}.nix
          ];
        };
    in
    {
      nixosConfigurations = nixpkgs.lib.genAttrs names mkWorker;
    };
}
