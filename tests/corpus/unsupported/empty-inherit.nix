{ pkgs, ... }:
{
  inherit;
  environment.systemPackages = [ pkgs.hello ];
}
