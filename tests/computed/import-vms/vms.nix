# More guests, in a file of their own
{ nixpkgs, microvm }:
{
  db = nixpkgs.lib.nixosSystem {
    system = "x86_64-linux";
    modules = [
      microvm.nixosModules.microvm
      {
        networking.hostName = "db";
        microvm.mem = 1536;
        microvm.vcpu = 2;
      }
    ];
  };
  queue = nixpkgs.lib.nixosSystem {
    system = "x86_64-linux";
    modules = [
      microvm.nixosModules.microvm
      { microvm.hypervisor = "firecracker"; }
    ];
  };
}
