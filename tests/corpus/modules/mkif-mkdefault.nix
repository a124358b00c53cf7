{ config, lib, pkgs, ... }:
{
  microvm.mem = lib.mkDefault 1024;
  microvm.vcpu = lib.mkForce 2;
  microvm.hypervisor = if pkgs.stdenv.isAarch64 then "cloud-hypervisor" else "qemu";
  microvm.shares = lib.optionals config.services.nginx.enable [
    { tag = "www"; source = "/srv/www"; mountPoint = "/var/www"; proto = "virtiofs"; }
  ];
  microvm.interfaces = [ { type = "tap"; id = "vm-${config.networking.hostName}"; mac = "02:00:00:00:00:02"; } ];
  services.nginx = lib.mkIf (config.networking.hostName == "www") { enable = true; };
  assertions = [
    { assertion = config.microvm.mem >= 512; message = "needs memory"; }
  ];
  networking.hostName = "www";
}
