{ self }:
{ ... }:
{
  microvm = {
    host.enable = true;
    vms.db.flake = self;
  };
}
