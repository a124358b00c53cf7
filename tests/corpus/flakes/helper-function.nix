{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }:
    let
      mkVm = name: mem: nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ microvm.nixosModules.microvm { networking.hostName = name; microvm.mem = mem; } ];
      };
    in {
      nixosConfigurations = {
        one = mkVm "one" 512;
        two = mkVm "two" 1024;
        three = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [ microvm.nixosModules.microvm { networking.hostName = "three"; } ];
        };
        four = nixpkgs.lib.nixosSystem ({ system = "x86_64-linux"; } // { modules = [ ]; });
      };
    };
}
