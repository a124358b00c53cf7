# Entry point of scripts/microvm-options.py: the schema of a microvm.nix
# checkout, read with the lib/ of a nixpkgs checkout (both folders on disk).
{
  # folder holding nixpkgs' lib/ (a nixpkgs checkout, or lib/ alone)
  nixpkgs,
  # a microvm.nix checkout
  microvm,
}:
{
  schema = import ../nixgen/schema.nix {
    lib = import (/. + nixpkgs + "/lib");
    microvm = /. + microvm;
  };
}
