{
  microvm = {
    hypervisor = "cloud-hypervisor";
    mem = 1024;
  };
}
