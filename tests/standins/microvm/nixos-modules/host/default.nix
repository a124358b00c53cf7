# The stand-in host module (`nixosModules.host`): the host options
# (./options.nix) and a small stand-in for what upstream does with them.
#
# - upstream's assertions: a guest is declared either inline (`config`) or by
#   flake (`flake`), and an inline guest has no `updateFlake`;
# - `microvm.autostart` gets every guest whose `autostart` is set, and the
#   `microvms` target wants their `microvm@` units;
# - per guest, the units upstream defines (`install-microvm-<name>`,
#   `microvm@<name>` with its restart triggers), as freeform settings;
# - a `microvm-host` package in `environment.systemPackages` holds, per guest,
#   what `install-microvm-<name>` would leave in the state folder: `current`
#   (the runner), `flake` (the flake reference) or `toplevel` (inline guests).
#   So building the host's toplevel builds every guest's runner.
#
# Nothing starts: there are no real units, and `bin/microvm` only lists.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.microvm;
  names = builtins.attrNames cfg.vms;

  guestConfig =
    name:
    let
      vm = cfg.vms.${name};
    in
    if vm.flake != null then
      vm.flake.nixosConfigurations.${name}.config
    else if vm.config != null then
      vm.config.config
    else
      throw "microvm stand-in: guest `${name}' in microvm.vms has neither `flake' nor `config'";

  install =
    name:
    let
      vm = cfg.vms.${name};
      guest = guestConfig name;
      dir = "$out/share/microvm-host/${lib.escapeShellArg name}";
    in
    ''
      mkdir -p ${dir}
      ln -s ${guest.microvm.declaredRunner} ${dir}/current
    ''
    + (
      if vm.flake != null then
        ''
          printf '%s\n' ${
            lib.escapeShellArg (if vm.updateFlake != null then vm.updateFlake else toString vm.flake)
          } > ${dir}/flake
        ''
      else
        ''
          ln -s ${guest.system.build.toplevel} ${dir}/toplevel
        ''
    );

  hostPackage = pkgs.runCommand "microvm-host" { } (
    ''
      mkdir -p "$out/bin" "$out/share/microvm-host"
      printf '%s\n' ${lib.escapeShellArg cfg.stateDir} > "$out/share/microvm-host/.state-dir"
      printf '%s\n' ${lib.escapeShellArg (lib.concatStringsSep " " cfg.autostart)} > "$out/share/microvm-host/.autostart"
      cat > "$out/bin/microvm" <<'SCRIPT'
      #!/bin/sh
      echo "microvm (nixgen stand-in): nothing is managed here"
      SCRIPT
      chmod +x "$out/bin/microvm"
    ''
    + lib.concatMapStrings install names
  );
in
{
  imports = [ ./options.nix ];

  config = lib.mkIf cfg.host.enable {
    assertions = lib.concatMap (name: [
      {
        assertion = cfg.vms.${name}.config != null -> cfg.vms.${name}.flake == null;
        message = "microvm.vms.${name}: a guest declared inline (`config') cannot also set `flake'";
      }
      {
        assertion = cfg.vms.${name}.config != null -> cfg.vms.${name}.updateFlake == null;
        message = "microvm.vms.${name}: a guest declared inline (`config') cannot set `updateFlake'";
      }
    ]) names;

    microvm.autostart = builtins.filter (name: cfg.vms.${name}.autostart) names;

    boot.kernelModules = [ "tun" ];
    environment.systemPackages = [ hostPackage ];

    users.users.microvm = {
      isSystemUser = true;
      group = "kvm";
    };

    systemd.targets.microvms = {
      wantedBy = [ "multi-user.target" ];
      wants = map (name: "microvm@${name}.service") cfg.autostart;
    };

    systemd.services = builtins.listToAttrs (
      lib.concatMap (name: [
        {
          name = "install-microvm-${name}";
          value = {
            description = "Install MicroVM '${name}'";
            wantedBy = [ "microvms.target" ];
            serviceConfig.Type = "oneshot";
          };
        }
        {
          name = "microvm@${name}";
          value = {
            restartTriggers = [ (guestConfig name).system.build.toplevel ];
            serviceConfig.X-RestartIfChanged = [
              ""
              cfg.vms.${name}.restartIfChanged
            ];
          };
        }
      ]) names
    );
  };
}
