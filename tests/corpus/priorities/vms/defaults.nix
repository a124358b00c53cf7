{ lib, ... }:
{
  microvm.mem = lib.mkDefault 1024;
  microvm.vcpu = lib.mkDefault 1;
  microvm.hypervisor = lib.mkOptionDefault "qemu";
  microvm.kernelParams = [ "quiet" ];
  microvm.socket = lib.mkIf true "control.socket";
  microvm.balloon = lib.mkForce false;
}
