{
  networking.hostName = "builder";
  microvm.vcpu = 4;
  microvm.mem = 8192;
}
