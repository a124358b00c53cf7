# Stand-in for nixpkgs' nixos/modules/profiles/headless.nix: intentionally empty.
{ }
