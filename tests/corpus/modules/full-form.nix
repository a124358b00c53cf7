{ config, lib, pkgs, ... }:
let
  cfg = config.services.myGuest;
in
{
  imports = [ ];

  options.services.myGuest = {
    enable = lib.mkEnableOption "my guest";
    port = lib.mkOption {
      type = lib.types.port;
      default = 8080;
    };
  };

  config = lib.mkIf cfg.enable {
    networking.firewall.allowedTCPPorts = [ cfg.port ];
  };
}
