{
  description = "binary cache, specialArgs, packages for every guest";

  nixConfig = {
    extra-substituters = [ "https://microvm.cachix.org" ];
    extra-trusted-public-keys = [
      "microvm.cachix.org-1:oXnBc6hRE3eX5rSYdRyMYXnfzcCxC7yKPTbZXALsqys="
    ];
  };

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm.url = "github:microvm-nix/microvm.nix";
    microvm.inputs.nixpkgs.follows = "nixpkgs";
    agenix.url = "github:ryantm/agenix";
  };

  outputs = { self, nixpkgs, microvm, agenix, ... }@inputs:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
    in
    {
      nixosConfigurations.vault = nixpkgs.lib.nixosSystem {
        inherit system;
        specialArgs = { inherit inputs; secretsDir = ./secrets; };
        modules = [
          microvm.nixosModules.microvm
          agenix.nixosModules.default
          ({ inputs, secretsDir, ... }: {
            networking.hostName = "vault";
            age.secrets.token.file = secretsDir + "/token.age";
            microvm.hypervisor = "qemu";
            microvm.mem = 1024;
            microvm.vsock.cid = 3;
          })
        ] ++ [ { services.vault.enable = true; } ];
      };

      packages.${system} = {
        vault = self.nixosConfigurations.vault.config.microvm.declaredRunner;
        default = self.packages.${system}.vault;
      };

      devShells.${system}.default = pkgs.mkShell { packages = [ pkgs.nixfmt-rfc-style ]; };
    };
}
