# Leading comment before everything.
/* A block comment
   spanning lines. */
{ # after the brace
  # before the first binding
  description = /* inline */ "comments in every position"; # trailing

  inputs = {
    # the package set
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable"; # unstable on purpose
    microvm = { /* empty-ish */
      url = "github:microvm-nix/microvm.nix";
      # follow our nixpkgs
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    # the arguments
    { self # us
    , nixpkgs # packages
    , microvm
    }: # end of formals
    let # let opens
      # the one system
      system = "x86_64-linux"; /* after system */
    in # in
    {
      nixosConfigurations = { # guests
        # the commented guest
        commented = nixpkgs.lib.nixosSystem {
          inherit system; # from let
          modules = [
            # the upstream module
            microvm.nixosModules.microvm
            # our settings
            {
              # host name
              networking.hostName = "commented"; # end of line
              microvm = {
                # memory in MiB
                mem = 1024; # one GiB
                /* block before vcpu */
                vcpu = 1;
                # hypervisor = "cloud-hypervisor";
                hypervisor = "qemu";
                # trailing comment in the set
              };
              # last comment in module
            }
            # after the module
          ]; # end of modules
        };
        # between guests
      };
      # before closing
    };
  # before the final brace
}
# after everything
