{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      mkVm =
        { name, mem }:
        nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            {
              networking.hostName = name;
              microvm.mem = mem;
              microvm.vcpu = 1;
            }
          ];
        };
    in
    {
      nixosConfigurations.small = mkVm {
        name = "small";
        mem = 256;
      };
      nixosConfigurations.large = mkVm {
        name = "large";
        mem = 4096;
      };
    };
}
