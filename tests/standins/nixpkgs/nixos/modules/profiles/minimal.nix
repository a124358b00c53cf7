# Stand-in for nixpkgs' nixos/modules/profiles/minimal.nix: intentionally empty.
{ }
