{ ... }:
{
  networking.hostName = "worker";
  microvm.balloon = true;
}
