{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }:
    let
      system = "x86_64-linux";
      guest = hypervisor: extra: nixpkgs.lib.nixosSystem {
        inherit system;
        modules = [ microvm.nixosModules.microvm { microvm.hypervisor = hypervisor; } extra ];
      };
    in
    {
      nixosConfigurations = {
        fc = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            {
              networking.hostName = "fc";
              microvm.hypervisor = "firecracker";
              microvm.mem = 256;
              microvm.socket = "fc.sock";
              microvm.interfaces = [ { type = "tap"; id = "vm-fc"; mac = "02:00:00:00:00:31"; } ];
            }
          ];
        };
        ch = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            {
              networking.hostName = "ch";
              microvm.hypervisor = "cloud-hypervisor";
              microvm.mem = 1024;
              microvm.initialBalloonMem = 512;
              microvm.hugepageMem = true;
              microvm.imageType = "qcow2";
            }
          ];
        };
        kvmtool = guest "kvmtool" { networking.hostName = "kt"; };
        crosvm = guest "crosvm" { networking.hostName = "cv"; };
      };
    };
}
