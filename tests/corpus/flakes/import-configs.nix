{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations = import ./hosts { inherit nixpkgs microvm; };
    # the host itself is declared elsewhere
    nixosModules.default = ./modules/host.nix;
  };
}
