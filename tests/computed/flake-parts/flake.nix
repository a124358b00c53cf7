{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.flake-parts.url = "github:hercules-ci/flake-parts";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    inputs@{ flake-parts, ... }:
    flake-parts.lib.mkFlake { inherit inputs; } {
      systems = [ "x86_64-linux" ];
      imports = [ ./vms/default.nix ];
      perSystem =
        { pkgs, ... }:
        {
          packages.default = pkgs.hello;
        };
      flake.nixosConfigurations.edge = inputs.nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          inputs.microvm.nixosModules.microvm
          {
            networking.hostName = "edge";
            microvm.mem = 1280;
          }
        ];
      };
    };
}
