{ lib, ... }:
{
  microvm.mem = 256;
  microvm.balloon = true;
}
