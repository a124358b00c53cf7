# The base NixOS modules of the stand-in. Outside `microvm` (which the
# microvm stand-in declares strictly) the NixOS namespace is freeform: the
# usual top-level namespaces are declared as open submodules, so any
# `services.*`, `users.users.*`, `networking.*`, `systemd.*`, ... definition is
# accepted and merged, while a misspelt top-level name still "does not exist".
# A few options the microvm module and nixgen read are declared with real
# types: networking.hostName, boot.kernelPackages, boot.kernelParams,
# environment.systemPackages, system.build, system.stateVersion,
# nixpkgs.hostPlatform, users.users.<name>.name, assertions, warnings.
{ pkgsFor }:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;

  settings = types.attrsOf types.anything;

  namespace =
    options:
    mkOption {
      type = types.submodule {
        freeformType = settings;
        inherit options;
      };
      default = { };
      description = "NixOS settings (freeform in the nixgen stand-in).";
    };

  freeformNamespaces = [
    "appstream"
    "console"
    "containers"
    "documentation"
    "fonts"
    "gtk"
    "hardware"
    "i18n"
    "krb5"
    "location"
    "meta"
    "nix"
    "powerManagement"
    "programs"
    "qt"
    "security"
    "services"
    "sound"
    "specialisation"
    "systemd"
    "time"
    "virtualisation"
    "xdg"
    "zramSwap"
    "fileSystems"
    "lib"
  ];

  hostPlatform = config.nixpkgs.hostPlatform;

  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);

  kernel = config.boot.kernelPackages.kernel;
  initrd = config.system.build.initialRamdisk;

  toplevel = pkgs.runCommand "nixos-system-${config.system.name}-${config.system.stateVersion}" {
    hostName = config.networking.hostName;
    kernelFile = "${kernel}/${config.system.boot.loader.kernelFile}";
    initrdFile = "${initrd}/${config.system.boot.loader.initrdFile}";
    kernelParams = config.boot.kernelParams;
    systemPackages = config.environment.systemPackages;
    stateVersion = config.system.stateVersion;
  } ''
    mkdir -p "$out/sw/bin" "$out/etc"
    printf '%s\n' "$hostName" > "$out/etc/hostname"
    printf '%s' "$kernelParams" > "$out/kernel-params"
    printf '%s' "$stateVersion" > "$out/nixos-version"
    ln -s "$kernelFile" "$out/kernel"
    ln -s "$initrdFile" "$out/initrd"
    printf '#!/bin/sh\necho "nixgen stand-in NixOS system %s: there is nothing to boot"\n' "$hostName" > "$out/init"
    chmod +x "$out/init"
    # Activation stand-in: records the action and the system in the target's
    # /nix/var, where the deploy tests over ssh look for it.
    mkdir -p "$out/bin"
    printf '#!/bin/sh\nmkdir -p /nix/var/nixgen-standin\necho "$1 %s" >> /nix/var/nixgen-standin/activations\n' "$out" > "$out/bin/switch-to-configuration"
    chmod +x "$out/bin/switch-to-configuration"
    for p in $systemPackages; do
      if [ -d "$p/bin" ]; then
        for b in "$p"/bin/*; do ln -sf "$b" "$out/sw/bin/"; done
      fi
    done
  '';
in
{
  _file = "<nixgen-standin>/nixos/modules/base.nix";
  key = "<nixgen-standin>/nixos/modules/base.nix";

  options = lib.genAttrs freeformNamespaces (_: namespace { }) // {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
      description = "Conditions (`{ assertion; message; }`) that must hold for the system to build.";
    };
    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      default = [ ];
      description = "Messages printed when the system is built.";
    };

    swapDevices = mkOption {
      type = types.listOf types.anything;
      default = [ ];
    };

    networking = namespace {
      hostName = mkOption {
        type = types.str;
        default = "nixos";
        description = "The name of the machine.";
      };
    };

    boot = namespace {
      kernelPackages = mkOption {
        type = types.raw;
        default = pkgs.linuxPackages;
        description = "Kernel package set; `kernel` is the kernel derivation.";
      };
      kernelParams = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      kernelModules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
    };

    environment = namespace {
      systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
    };

    users = namespace {
      users = mkOption {
        type = types.attrsOf (
          types.submodule (
            { name, ... }:
            {
              freeformType = settings;
              options.name = mkOption {
                type = types.str;
                default = name;
              };
            }
          )
        );
        default = { };
      };
    };

    system = namespace {
      build = mkOption {
        type = types.lazyAttrsOf types.raw;
        default = { };
        description = "Build results (toplevel, initialRamdisk, ...).";
      };
      stateVersion = mkOption {
        type = types.str;
        default = lib.trivial.release;
      };
      name = mkOption {
        type = types.str;
        default = if config.networking.hostName == "" then "unnamed" else config.networking.hostName;
      };
      boot.loader.initrdFile = mkOption {
        type = types.str;
        default = "initrd";
      };
      boot.loader.kernelFile = mkOption {
        type = types.str;
        default = if hostPlatform.isAarch64 then "Image" else "bzImage";
      };
    };

    nixpkgs = namespace {
      system = mkOption {
        type = types.str;
        default = throw "Neither nixpkgs.hostPlatform nor the legacy option nixpkgs.system has been set. Pass `system' to nixosSystem or set nixpkgs.hostPlatform.";
      };
      hostPlatform = mkOption {
        type = types.either types.str types.attrs;
        default = config.nixpkgs.system;
        apply = lib.systems.elaborate;
      };
      pkgs = mkOption {
        type = types.nullOr types.pkgs;
        default = null;
      };
      overlays = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
    };
  };

  config = {
    _module.args.pkgs = lib.mkOptionDefault (
      if config.nixpkgs.pkgs != null then config.nixpkgs.pkgs else pkgsFor hostPlatform.system
    );

    system.build.initialRamdisk = pkgs.runCommand "initrd-stub" { } ''
      mkdir -p "$out"
      echo "nixgen stand-in initrd (not bootable)" > "$out/initrd"
    '';

    system.build.toplevel =
      if failedAssertions != [ ] then
        throw "\nFailed assertions:\n${lib.concatMapStringsSep "\n" (m: "- ${m}") failedAssertions}"
      else
        lib.foldr lib.warn toplevel config.warnings;
  };
}
