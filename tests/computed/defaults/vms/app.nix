{ ... }:
{
  networking.hostName = "app";
  microvm.mem = 4096;
  microvm.vcpu = 4;
}
