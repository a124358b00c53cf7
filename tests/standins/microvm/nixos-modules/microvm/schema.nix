# The upstream option schema (a copy of microvm-options.json, see the
# README). Missing file: a clear error instead of a bare "file not found".
let
  path = ../../options.json;
in
if builtins.pathExists path then
  builtins.fromJSON (builtins.readFile path)
else
  throw "nixgen's microvm stand-in needs options.json beside its flake.nix (a copy of shared/reference/microvm-options.json; tests/standin.py prepare_inputs() puts it there). See tests/standins/README.md."
