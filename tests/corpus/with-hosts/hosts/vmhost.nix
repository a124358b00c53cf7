{ ... }:
{
  networking.hostName = "vmhost";
  microvm.host.enable = true;
  microvm.vms.web.autostart = true;
}
