{
  networking.hostName = "dns";
  microvm.vcpu = 1;
}
