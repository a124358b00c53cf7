# A guest module with most microvm.* options spelled out.
{ config, lib, pkgs, ... }:

{
  microvm = {
    hypervisor = "qemu";
    vcpu = 4;
    mem = 4096;
    balloon = true;
    initialBalloonMem = 0;
    hotplugMem = 2048;
    socket = "control.socket";
    storeOnDisk = false;
    writableStoreOverlay = "/nix/.rw-store";
    graphics.enable = false;
    vsock.cid = 42;
    kernelParams = [ "console=ttyS0" "tsc_early_khz=2300000" ];
    qemu = {
      machine = "microvm";
      extraArgs = [ "-cpu" "max,-sgx" ];
      serialConsole = true;
    };
    interfaces = [
      { type = "user"; id = "qemu"; mac = "02:00:00:01:01:01"; }
      { type = "bridge"; id = "vm-full"; bridge = "br0"; mac = "02:00:00:01:01:02"; }
    ];
    forwardPorts = [
      { from = "host"; host.port = 2222; guest.port = 22; }
      { proto = "udp"; from = "host"; host.address = "127.0.0.1"; host.port = 5353; guest.port = 53; }
    ];
    volumes = [
      { image = "var.img"; mountPoint = "/var"; size = 256; autoCreate = true; fsType = "ext4"; }
      { image = "/dev/disk/by-id/nvme-data"; mountPoint = null; size = 0; }
    ];
    shares = [
      { proto = "9p"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; }
      { proto = "virtiofs"; tag = "home"; source = "/home/user"; mountPoint = "/home/user"; socket = "home.sock"; }
    ];
    devices = [ { bus = "pci"; path = "0000:01:00.0"; } ];
  };

  networking.hostName = "full";
  networking.useDHCP = false;
  users.users.root.hashedPassword = "!";
  services.openssh = {
    enable = true;
    settings.PermitRootLogin = "prohibit-password";
  };
  fileSystems."/".device = "none";
  boot.kernel.sysctl."net.ipv4.ip_forward" = 1;
  time.timeZone = null;
  system.stateVersion = "24.11";
  nix.settings.max-jobs = 0.5e1;
  nix.settings.cores = -1;
}
