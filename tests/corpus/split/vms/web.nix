{ config, lib, pkgs, ... }:

{
  imports = [ ./web-extra.nix ];

  networking.hostName = "web";

  microvm = {
    mem = 1024;
    vcpu = 2;
    interfaces = [
      {
        type = "tap";
        id = "vm-web";
        mac = "02:00:00:00:00:10";
      }
    ];
  };

  services.nginx = {
    enable = true;
    virtualHosts."web.example.org".root = "/var/www";
  };
}
