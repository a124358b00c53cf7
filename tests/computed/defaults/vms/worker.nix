{ ... }:
{
  networking.hostName = "worker";
  microvm.balloon = true;
  microvm.kernelParams = [ "quiet" ];
}
