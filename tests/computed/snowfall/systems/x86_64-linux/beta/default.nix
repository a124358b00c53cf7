{ lib, pkgs, ... }:
{
  microvm.mem = 900;
  environment.systemPackages = [ pkgs.htop ];
  # only on x86_64: a condition nixgen does not evaluate
  microvm.qemu = lib.mkIf pkgs.stdenv.hostPlatform.isx86_64 {
    machine = "q35";
  };
}
