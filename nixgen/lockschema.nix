# The schema of the microvm.nix a flake has locked (see nixgen/lockschema.py):
# its `microvm` input read with the lib of its `nixpkgs` input, both fetched
# by their lock entries (already in the store once the flake was locked or
# evaluated), then walked by ./schema.nix.
{
  # `locked` attributes of the lock file's nodes, as JSON
  microvm,
  nixpkgs,
}:
let
  fetch = locked: builtins.fetchTree (builtins.fromJSON locked);
  read = import ./schema.nix {
    lib = import ((fetch nixpkgs).outPath + "/lib");
    microvm = (fetch microvm).outPath;
  };
in
{
  schema = {
    inherit (read) guest host;
  };
}
