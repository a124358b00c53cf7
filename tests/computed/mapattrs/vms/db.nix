{ ... }:
{
  microvm.vcpu = 4;
}
