{
  networking.hostName = "mail";
  microvm.vcpu = 2;
  microvm.balloon = true;
}
