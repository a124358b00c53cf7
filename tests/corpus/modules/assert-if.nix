{ lib, pkgs, ... }:
assert lib.versionAtLeast lib.version "23.11";
let
  big = true;
in
{
  microvm.mem = if big then 8192 else 1024;
  microvm.vcpu = assert big; 8;
  microvm.hypervisor = "qemu";
  networking.hostName = "big";
  environment.systemPackages = with pkgs; [ git (python3.withPackages (ps: [ ps.requests ])) ];
  boot.kernelParams = [ "mitigations=off" ] ++ lib.optional big "hugepagesz=1G";
  networking.hosts."10.0.0.1" = [ "gateway" "gw" ];
  users.users.alice = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
    openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample alice@laptop" ];
  };
  environment.etc."numbers".text = builtins.toJSON { a = 1.5; b = -2; c = 1.0e-3; };
  services.getty.autologinUser = null;
}
