{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }:
    let
      vms = [
        { name = "a"; mem = 512; }
        { name = "b"; mem = 1024; }
      ];
    in {
      nixosConfigurations = builtins.listToAttrs (map (vm: {
        inherit (vm) name;
        value = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [ microvm.nixosModules.microvm { microvm.mem = vm.mem; } ];
        };
      }) vms);
    };
}
