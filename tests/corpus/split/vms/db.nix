{ pkgs, ... }:
let
  dataDir = "/var/lib/postgresql";
in
{
  networking.hostName = "db";
  microvm.mem = 2048;
  microvm.volumes = [
    {
      image = "db.img";
      mountPoint = dataDir;
      size = 8192;
    }
  ];
  services.postgresql = {
    enable = true;
    package = pkgs.postgresql_16;
    inherit dataDir;
  };
}
