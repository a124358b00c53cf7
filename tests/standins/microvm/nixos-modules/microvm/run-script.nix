# The text of the stand-in runner's bin/microvm-run. It starts nothing: it
# prints one line, `microvm-run <hostName> hypervisor=<hv> vcpu=<n> mem=<n>`,
# and exits 0. The kernel, initrd and kernel parameters are recorded in
# comments so that the runner's closure holds them, as a real runner's does.
# This is the one file to replace to make the runner start a real qemu.
{
  lib,
  hostName,
  hypervisor,
  vcpu,
  mem,
  kernel,
  initrd,
  kernelParams,
  socket ? null,
  storeDisk ? null,
}:
''
  #!/bin/sh
  # nixgen stand-in for a microvm.nix runner: no VM is started.
  # kernel: ${kernel}
  # initrd: ${initrd}
  # kernel parameters: ${lib.concatStringsSep " " kernelParams}
  # control socket: ${if socket == null then "none" else socket}
  # store disk: ${if storeDisk == null then "none" else "${storeDisk}"}
  echo ${lib.escapeShellArg "microvm-run ${hostName} hypervisor=${hypervisor} vcpu=${toString vcpu} mem=${toString mem}"}
''
