{ lib, ... }:
{
  microvm.hypervisor = "qemu";
  microvm.mem = 1024;
}
