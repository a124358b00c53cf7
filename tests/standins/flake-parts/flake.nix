{
  description = "nixgen test stand-in for flake-parts: lib.mkFlake with flake, systems, perSystem and imports (not the real flake-parts)";

  outputs =
    { self }:
    {
      lib.mkFlake = import ./lib/mkflake.nix;
    };
}
