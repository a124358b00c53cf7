{ ... }:
{
  imports = [ ./deep-extra.nix ];
  networking.hostName = "deep";
  microvm.mem = 2048;
}
