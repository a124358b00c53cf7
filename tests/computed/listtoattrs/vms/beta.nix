{
  microvm.mem = 768;
  microvm.vcpu = 2;
}
