{
  microvm.mem = 2222;
  microvm.kernelParams = [ "quiet" ];
}
