# What every guest gets unless it says otherwise
{ lib, ... }:
{
  microvm.mem = lib.mkDefault 1024;
  microvm.vcpu = lib.mkDefault 1;
  microvm.hypervisor = "qemu";
  microvm.kernelParams = [ "console=hvc0" ];
}
