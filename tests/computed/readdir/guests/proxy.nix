{ lib, ... }:
{
  microvm.mem = 384;
  microvm.kernelParams = [ "quiet" ];
}
