{
  description = "guests written as dotted paths";
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm.url = "github:microvm-nix/microvm.nix";
  };
  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations.alpha = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ microvm.nixosModules.microvm { networking.hostName = "alpha"; microvm.mem = 768; } ];
    };
    nixosConfigurations.beta = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.microvm
        { networking.hostName = "beta"; }
        { microvm.vcpu = 4; microvm.hypervisor = "crosvm"; }
      ];
    };
    nixosConfigurations."gamma-1" = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ microvm.nixosModules.microvm { networking.hostName = "gamma-1"; } ];
    };
    packages.x86_64-linux.alpha = self.nixosConfigurations.alpha.config.microvm.declaredRunner;
  };
}
