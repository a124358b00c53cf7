# What the stand-in derives from a guest's settings: kernel parameters (with
# the closure registration), one stub runner per hypervisor, the store disk,
# and the option values upstream sets in config rather than as defaults.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  schema = import ./schema.nix;
  cfg = config.microvm;
  platform = pkgs.stdenv.hostPlatform;
  hypervisors = schema.hypervisor.type.values;
  toplevel = config.system.build.toplevel;

  # The closure of the guest system; booting registers it in the guest's Nix
  # database (`regInfo=` kernel parameter, `nix-store --load-db` upstream).
  regInfo = pkgs.closureInfo { rootPaths = [ toplevel ]; };

  console =
    if cfg.hypervisor == "qemu" then
      (if platform.isAarch64 then "ttyAMA0" else "ttyS0")
    else
      "hvc0";

  storeDisk =
    pkgs.runCommand "microvm-store-disk.${cfg.storeDiskType}"
      {
        storePaths = "${regInfo}/store-paths";
        passthru = { inherit regInfo; };
      }
      ''
        {
          echo "nixgen stand-in ${cfg.storeDiskType} store image (not mountable); it would hold:"
          cat "$storePaths"
        } > "$out"
      '';

  mkRunner = import ./runner.nix { inherit config lib pkgs; };
in
{
  # Upstream declares it as a path set only when storeOnDisk; the stand-in's
  # is null otherwise, so it is declared here (options.nix skips the schema's).
  options.microvm = {
    storeDisk = lib.mkOption {
      type = lib.types.nullOr lib.types.package;
      internal = true;
      description = "The store disk image (stand-in: a text file), null unless storeOnDisk.";
    };
  };

  config = lib.mkIf cfg.guest.enable {
    microvm = {
      kernelParams = [
        "console=${console}"
        "reboot=t"
        "panic=-1"
        "init=${toplevel}/init"
      ]
      ++ lib.optional cfg.registerClosure "regInfo=${regInfo}/registration"
      ++ config.boot.kernelParams;

      runner = lib.genAttrs hypervisors mkRunner;

      storeDiskType = lib.mkDefault "erofs";
      qemu.machine = lib.mkDefault (if platform.isAarch64 then "virt" else "microvm");
      storeDisk = if cfg.storeOnDisk then storeDisk else null;
    };
  };
}
