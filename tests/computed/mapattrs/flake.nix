{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      # one entry per guest: what differs between them
      specs = {
        web = {
          mem = 512;
        };
        db = {
          mem = 2048;
        };
      };
    in
    {
      nixosConfigurations = nixpkgs.lib.mapAttrs (
        name: spec:
        nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            {
              networking.hostName = name;
              microvm.mem = spec.mem;
            }
            ./vms/${name}.nix
          ];
        }
      ) specs;
    };
}
