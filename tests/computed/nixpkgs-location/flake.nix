{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      # What nixpkgs' own lib.nixosSystem does (eval-config.nix's
      # modulesLocation): every module it is given gets the file of nixpkgs'
      # flake.nix as its location, so inline modules look like nixpkgs code.
      nixosSystem =
        args:
        nixpkgs.lib.nixosSystem (
          args
          // {
            modules = map (m: {
              _file = "${nixpkgs}/flake.nix";
              imports = [ m ];
            }) args.modules;
          }
        );
      mkVm =
        name:
        nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            {
              networking.hostName = name;
              microvm.vcpu = 2;
            }
            ./vms/${name}.nix
          ];
        };
    in
    {
      nixosConfigurations = nixpkgs.lib.genAttrs [ "one" "two" ] mkVm;
    };
}
