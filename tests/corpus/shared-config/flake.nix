{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations = {
      a = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ microvm.nixosModules.microvm ./config { networking.hostName = "a"; } ];
      };
      b = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ microvm.nixosModules.microvm ./config { networking.hostName = "b"; } ];
      };
    };
  };
}
