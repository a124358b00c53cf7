{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { self, nixpkgs, microvm }:
    let
      # every file in ./guests is a guest, named after the file
      files = builtins.attrNames (builtins.readDir ./guests);
      nameOf = file: builtins.substring 0 (builtins.stringLength file - 4) file;
      mkVm =
        file:
        nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            (./guests + "/${file}")
            {
              networking.hostName = nameOf file;
              microvm.socket = nameOf file + ".socket";
            }
          ];
        };
    in
    {
      nixosConfigurations = builtins.listToAttrs (
        map (file: {
          name = nameOf file;
          value = mkVm file;
        }) files
      );
    };
}
