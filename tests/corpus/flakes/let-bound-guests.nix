{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
  inputs.microvm.url = "github:astro/microvm.nix";

  outputs = inputs@{ self, nixpkgs, microvm, ... }:
    let
      inherit (nixpkgs) lib;
      system = "aarch64-linux";
      hostSystem = system;
      base = {
        microvm.hypervisor = "qemu";
        microvm.socket = "control.socket";
        users.users.root.password = "";
      };
      router = lib.nixosSystem {
        system = hostSystem;
        modules = [
          microvm.nixosModules.microvm
          base
          {
            networking.hostName = "router";
            microvm.mem = 384;
          }
        ];
      };
    in
    {
      nixosConfigurations = {
        inherit router;
        dns = lib.nixosSystem {
          inherit system;
          modules = [ microvm.nixosModules.microvm base { networking.hostName = "dns"; } ];
        };
      };
    };
}
