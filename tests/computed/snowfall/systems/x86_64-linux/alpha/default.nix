{ lib, ... }:
{
  microvm = {
    mem = 700;
    vcpu = 2;
  };
}
