# The text of the stand-in runner's bin/microvm-run.
#
# Without a guest image it starts nothing: it prints one line,
# `microvm-run <hostName> hypervisor=<hv> vcpu=<n> mem=<n>`, and exits 0.
#
# With a guest image (`guest = { kernel; initrd; }`, qemu on x86_64 only; see
# ./runner.nix and tests/guestimage.py) it execs a real qemu-system-x86_64 with
# upstream's flags for the `microvm` machine, adapted to TCG: the tiny test
# guest boots (not the NixOS system below), prints
# `NIXGEN-GUEST-BOOTED <hostName>` on the serial console (stdio) and answers
# on the QMP socket. virtiofs shares are passed to qemu (and mounted by the
# test guest); 9p shares, volumes, interfaces, vsock and devices are not.
#
# Either way the NixOS kernel, initrd and kernel parameters are recorded in
# comments, so that the runner's closure holds them, as a real runner's does.
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
  guest ? null,
  balloon ? false,
  # [ { tag; socket; mountPoint; } ]: passed to qemu as vhost-user-fs devices
  # (served by bin/virtiofsd-run), and to the test guest, which mounts them
  virtiofsShares ? [ ],
}:
let
  # Upstream's qemu arguments for x86_64 and `-M microvm`, with the changes
  # TCG needs here: accel=tcg (KVM can't run guests on these machines),
  # `-cpu max,-sgx` for `host,+x2apic,-sgx`, and tsc_early_khz (with pit=off
  # the kernel can hang calibrating its clock under TCG). pcie=on so that
  # `*-pci` devices work, as upstream has it whenever a guest has shares.
  qemuArgs = [
    "-name"
    hostName
    "-M"
    "microvm,accel=tcg,acpi=on,mem-merge=on,pcie=on,pic=off,pit=off,rtc=on,usb=off"
    "-m"
    "${toString mem}M"
    "-smp"
    (toString vcpu)
    "-nodefaults"
    "-no-user-config"
    "-no-reboot"
    "-kernel"
    "${guest.kernel}"
    "-initrd"
    "${guest.initrd}"
    "-chardev"
    "stdio,id=stdio,signal=off"
    "-device"
    "virtio-rng-pci"
    "-serial"
    "chardev:stdio"
    "-cpu"
    "max,-sgx"
    # a keyboard controller, for Ctrl-Alt-Del from bin/microvm-shutdown
    "-device"
    "i8042"
    "-append"
    (lib.concatStringsSep " " (
      kernelParams
      ++ [
        "tsc_early_khz=2300000"
        "nixgen.host=${hostName}"
      ]
      ++ map (s: "nixgen.virtiofs=${s.tag}:${s.mountPoint}") virtiofsShares
    ))
    "-nographic"
    "-sandbox"
    "on"
  ]
  ++ lib.optionals (socket != null) [
    "-qmp"
    "unix:${socket},server,nowait"
  ]
  ++ lib.optionals balloon [
    "-device"
    "virtio-balloon-pci,free-page-reporting=on,id=balloon0"
  ]
  # vhost-user needs guest memory the daemon can map: memfd, shared (as upstream)
  ++ lib.optionals (virtiofsShares != [ ]) [
    "-object"
    "memory-backend-memfd,id=mem,size=${toString mem}M,share=on"
    "-numa"
    "node,memdev=mem"
  ]
  ++ builtins.concatLists (
    lib.imap0 (i: s: [
      "-chardev"
      "socket,id=fs${toString i},path=${s.socket}"
      "-device"
      "vhost-user-fs-pci,chardev=fs${toString i},tag=${s.tag}"
    ]) virtiofsShares
  );

  comments = ''
    # kernel: ${kernel}
    # initrd: ${initrd}
    # kernel parameters: ${lib.concatStringsSep " " kernelParams}
    # control socket: ${if socket == null then "none" else socket}
    # store disk: ${if storeDisk == null then "none" else "${storeDisk}"}
  '';
in
if guest == null then
  ''
    #!/bin/sh
    # nixgen stand-in for a microvm.nix runner: no VM is started.
    ${comments}
    echo ${lib.escapeShellArg "microvm-run ${hostName} hypervisor=${hypervisor} vcpu=${toString vcpu} mem=${toString mem}"}
  ''
else
  ''
    #!/bin/sh
    # nixgen stand-in for a microvm.nix qemu runner: boots the tiny test guest
    # (tests/guestimage.py), not the NixOS system below.
    ${comments}
    PATH="''${PATH:+$PATH:}/usr/bin:/bin"
    qemu=$(command -v qemu-system-x86_64) || {
      echo "microvm-run: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2
      exit 127
    }
    exec "$qemu" ${lib.escapeShellArgs qemuArgs}
  ''
