{
  description = "nixgen test stand-in for nixpkgs: a small module system, lib.nixosSystem and stub packages (not the real nixpkgs)";

  outputs =
    { self }:
    let
      baseLib = import ./lib;
      pkgsFor = import ./pkgs { lib = self.lib; };
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    in
    {
      lib = baseLib // {
        nixosSystem = import ./nixos/lib/eval-config.nix {
          lib = self.lib;
          inherit pkgsFor;
        };
      };

      legacyPackages = baseLib.genAttrs systems pkgsFor;

      nixosModules.notDetected = { };
    };
}
