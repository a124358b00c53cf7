{
  description = "guests whose modules nixgen cannot all read";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations = {
      # the hypervisor is set in a module made by a function
      fn = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          (import ./vms/hypervisor.nix { hypervisor = "cloud-hypervisor"; })
          { networking.hostName = "fn"; microvm.mem = 1024; }
        ];
      };
      # a module file that is not there (yet)
      gone = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          ./vms/missing.nix
          { networking.hostName = "gone"; }
        ];
      };
      # a module file importing one that is not there
      deep = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ microvm.nixosModules.microvm ./vms/deep.nix ];
      };
      whole = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          { networking.hostName = "whole"; microvm.vcpu = 2; }
        ];
      };
    };
  };
}
