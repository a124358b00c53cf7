{ lib, ... }:
{
  microvm.hypervisor = "qemu";
  microvm.mem = lib.mkDefault 512;
}
