{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      mkVM =
        name: cfg:
        nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            { networking.hostName = name; }
            cfg
          ];
        };
    in
    {
      nixosConfigurations = {
        web = mkVM "web" {
          microvm.mem = 768;
          microvm.vcpu = 2;
        };
        db = mkVM "db" {
          microvm = {
            mem = 2048;
            hypervisor = "cloud-hypervisor";
          };
        };
      };
    };
}
