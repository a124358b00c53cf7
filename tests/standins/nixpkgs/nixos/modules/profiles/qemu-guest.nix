# Stand-in for nixpkgs' nixos/modules/profiles/qemu-guest.nix: intentionally empty.
{ }
