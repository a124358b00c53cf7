{ lib, pkgs, ... }:
{
  microvm.mem = 900;
  environment.systemPackages = [ pkgs.htop ];
}
