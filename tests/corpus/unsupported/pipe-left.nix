{ lib, ... }:
{
  environment.systemPackages = lib.unique <| [ ];
}
