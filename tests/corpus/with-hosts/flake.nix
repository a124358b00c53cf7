{
  description = "guests, and the hosts that run them, in one flake";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # microvm.nix under another name
    mvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    { self, nixpkgs, mvm }:
    {
      nixosConfigurations = {
        web = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            mvm.nixosModules.microvm
            {
              networking.hostName = "web";
              microvm.mem = 512;
            }
          ];
        };
        db = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            mvm.nixosModules.microvm
            { networking.hostName = "db"; }
          ];
        };
        cache = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            mvm.nixosModules.microvm
            { networking.hostName = "cache"; }
          ];
        };

        # The machine that runs web, written by hand.
        vmhost = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            mvm.nixosModules.host
            ./hosts/vmhost.nix
          ];
        };

        # A host made of a host module of this flake (as nixgen renders them).
        edge = nixpkgs.lib.nixosSystem {
          system = "aarch64-linux";
          modules = [
            self.nixosModules.edge
            { networking.hostName = "edge"; }
          ];
        };
      };

      nixosModules.edge = import ./hosts/edge.nix { inherit self; };
      # A host module no configuration here uses: import it elsewhere.
      nixosModules.spare = {
        microvm.autostart = [ "db" ];
      };
    };
}
