{ lib, ... }:
{
  networking.hostName = "vm";
  microvm.mem = 4096;
  microvm.vcpu = lib.mkOverride 900 2;
  microvm.hypervisor = lib.mkDefault "qemu";
  microvm.kernelParams = [ "console=ttyS0" ];
  microvm.socket = "vm.sock";
  microvm.balloon = true;
}
