# Evaluates the hosts of a nixgen project, module-only hosts included (see
# nixgen/hostcheck.py). nixgen runs it with `--override-input project <the
# project's flake>` (and the project's own overrides as project/<input>), so
# the input below is never fetched.
{
  description = "nixgen: evaluate the hosts of a project flake";

  inputs.project.url = "path:/nonexistent/nixgen-project";

  outputs =
    { self, project }:
    let
      inherit (project.inputs) nixpkgs microvm;

      # What a real host configuration has and a module-only host leaves to the
      # configuration that imports it: a root file system and no boot loader.
      standIn = name: {
        _file = "<nixgen host check of ${name}>";
        networking.hostName = nixpkgs.lib.mkDefault name;
        fileSystems."/" = nixpkgs.lib.mkDefault {
          device = "none";
          fsType = "tmpfs";
        };
        boot.loader.grub.enable = nixpkgs.lib.mkDefault false;
        system.stateVersion = nixpkgs.lib.mkDefault nixpkgs.lib.trivial.release or "25.05";
      };

      # A full host (nixosConfiguration = true) as the flake has it; a
      # module-only host as a minimal NixOS importing its module.
      configuration =
        name: system:
        project.nixosConfigurations.${name} or (nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            microvm.nixosModules.host
            project.nixosModules.${name}
            (standIn name)
          ];
        });
      # The host module's own settings, which the system need not depend on:
      # forcing them checks their types (a guest's config, pkgs and flake are
      # whole configurations and package sets: only the system checks those).
      hostSettings =
        cfg:
        builtins.deepSeq [
          cfg.host
          cfg.stateDir
          cfg.autostart
          (builtins.mapAttrs (_: vm: [
            vm.updateFlake
            vm.autostart
            vm.restartIfChanged
            (builtins.length (vm.extraModules or [ ]))
          ]) cfg.vms)
        ] true;
    in
    {
      # { <host> = <system>; } -> { <host> = <drvPath of its system>; }
      evaluate = builtins.mapAttrs (
        name: system:
        let
          config = (configuration name system).config;
        in
        builtins.seq (hostSettings config.microvm) config.system.build.toplevel.drvPath
      );
    };
}
