{ lib, ... }:
{
  options = { };
  config = {
    microvm.mem = 1536;
    microvm.hypervisor = "cloud-hypervisor";
    networking = {
      hostName = "sectioned";
      useNetworkd = true;
    };
  };
}
