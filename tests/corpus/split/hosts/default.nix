{
  config = {
    networking.hostName = "builder";
    microvm.mem = 4096;
    microvm.vcpu = 4;
  };
  options = { };
}
