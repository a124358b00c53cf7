{
  description = "written on Windows: CRLF line endings";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations.crlf = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.microvm
        {
          networking.hostName = "crlf";
          microvm = {
            mem = 1024;
            hypervisor = "qemu";
          };
          environment.etc."crlf".text = ''
            a line
          '';
          environment.etc."quoted".text = "two
          lines";
        }
      ];
    };
  };
}
