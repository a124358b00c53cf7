{ hypervisor }:
{
  microvm.hypervisor = hypervisor;
  microvm.vcpu = 4;
}
