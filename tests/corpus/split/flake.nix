{
  description = "guests split over files";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, microvm }:
    let
      system = "x86_64-linux";
    in
    {
      nixosConfigurations = {
        web = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            ./vms/common.nix
            ./vms/web.nix
          ];
        };
        db = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [ microvm.nixosModules.microvm ./vms/common.nix ./vms/db.nix ];
        };
        builder = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [ microvm.nixosModules.microvm ./hosts ];
        };
      };
    };
}
