{
  description = "nixgen test stand-in for microvm.nix: declares upstream's guest options from options.json; runners are stubs (not the real microvm.nix)";

  # Only here so that `inputs.microvm.inputs.nixpkgs.follows = "nixpkgs"`
  # (the upstream template's shape) has something to follow.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    {
      nixosModules = {
        microvm = import ./nixos-modules/microvm;
        host = {
          imports = [ ./nixos-modules/host ];
          config._module.args.microvmNixosSystem = nixpkgs.lib.nixosSystem;
        };
        default = self.nixosModules.microvm;
      };
    };
}
