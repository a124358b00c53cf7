{
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm.url = "github:microvm-nix/microvm.nix";
  };

  outputs = { self, nixpkgs, microvm }: rec {
    system = "x86_64-linux";
    vmName = "rec-vm";

    nixosConfigurations.${vmName} = nixpkgs.lib.nixosSystem {
      inherit system;
      modules = [ microvm.nixosModules.microvm ];
    };

    nixosConfigurations.plain = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.microvm
        rec {
          port = 8443;
          networking.hostName = "plain";
          networking.firewall.allowedTCPPorts = [ port ];
        }
      ];
    };

    packages.${system}.default = nixosConfigurations.plain.config.microvm.declaredRunner;
  };
}
