{ lib, ... }:
{
  microvm.hypervisor = lib.mkDefault "qemu";
  microvm.shares = [
    {
      proto = "virtiofs";
      tag = "ro-store";
      source = "/nix/store";
      mountPoint = "/nix/.ro-store";
    }
  ];
  system.stateVersion = "24.11";
}
