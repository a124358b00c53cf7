{ config, ... }:
let
  name = "dyn";
  iface = "eth0";
in
{
  networking.interfaces.${iface}.useDHCP = true;
  networking.interfaces."${iface}-alias".useDHCP = false;
  environment.etc."${name}.conf".text = "x";
  "networking".hostName = name;
  microvm."mem" = 1024;
}
