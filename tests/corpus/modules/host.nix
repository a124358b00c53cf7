# Host side: run guests declared inline and from flakes.
{ config, pkgs, inputs, ... }:
{
  imports = [ inputs.microvm.nixosModules.host ];

  microvm.host.enable = true;
  microvm.autostart = [ "web" "db" ];
  microvm.vms = {
    web = {
      flake = inputs.self;
      updateFlake = "git+file:///etc/nixos";
      restartIfChanged = true;
    };
    inline = {
      autostart = false;
      config = {
        microvm.mem = 256;
        microvm.shares = [ {
          source = "/nix/store";
          mountPoint = "/nix/.ro-store";
          tag = "ro-store";
          proto = "virtiofs";
        } ];
        networking.hostName = "inline";
      };
    };
  };
  systemd.network.netdevs."10-microvm".netdevConfig = { Kind = "bridge"; Name = "microvm"; };
}
