{ ... }:
{
  microvm.vcpu = 2;
  microvm.socket = "web.socket";
}
