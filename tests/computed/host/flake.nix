{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      inherit (nixpkgs) lib;
      guests = {
        dns = 256;
        mail = 1024;
      };
      mkGuest =
        name: mem:
        lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            { microvm.mem = mem; }
            ./guests/${name}.nix
          ];
        };
    in
    {
      nixosConfigurations = {
        vmhost = lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.host
            {
              networking.hostName = "vmhost";
              # every guest of this flake runs on this host
              microvm.vms = builtins.mapAttrs (_: _: { flake = self; }) guests;
            }
          ];
        };
      }
      // builtins.mapAttrs mkGuest guests;
    };
}
