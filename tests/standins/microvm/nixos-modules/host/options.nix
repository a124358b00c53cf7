# microvm.nix's host options, declared strictly as the guest options are:
# upstream's names, types and defaults for
# `microvm.host.{enable,startupTimeout,useNotifySockets}`,
# `microvm.vms.<name>.{flake,updateFlake,config,evaluatedConfig,nixpkgs,pkgs,
# specialArgs,extraModules,autostart,restartIfChanged}`, `microvm.stateDir`
# and `microvm.autostart`, and nothing else, so a misspelt or mistyped host
# setting fails as it would with the real module. Written for nixgen's tests
# from nixgen's packaged schema; not upstream code.
#
# `microvmNixosSystem` (a module argument the flake sets: the stand-in
# nixpkgs' lib.nixosSystem) evaluates a guest declared inline (`config`), with
# this stand-in's guest module and the guest's extraModules added, as
# upstream does with nixpkgs' eval-config. It is only used then, so the
# options can be read without it (nixgen/schema.nix does).
{
  lib,
  pkgs,
  microvmNixosSystem,
  ...
}:
let
  inherit (lib) mkOption types;

  # A guest declared inline: every definition is a NixOS module of the guest;
  # the merged value is that guest's evaluated NixOS configuration.
  guestConfig =
    {
      name,
      vm,
    }:
    types.mkOptionType {
      name = "Toplevel NixOS config";
      description = "NixOS configuration of the guest `${name}'";
      merge =
        loc: defs:
        microvmNixosSystem {
          system = (if vm.pkgs != null then vm.pkgs else pkgs).stdenv.hostPlatform.system;
          pkgs = vm.pkgs;
          inherit (vm) specialArgs;
          modules = [
            {
              _file = "<nixgen-standin>/microvm/nixos-modules/host/options.nix";
              networking.hostName = lib.mkDefault name;
            }
            ../microvm
          ]
          ++ vm.extraModules
          ++ map (d: {
            _file = d.file;
            imports = [ d.value ];
          }) defs;
        };
    };

  vmOptions =
    { name, config, ... }:
    {
      options = {
        config = mkOption {
          type = types.nullOr (guestConfig {
            inherit name;
            vm = config;
          });
          default = null;
          description = "The guest as a NixOS module, built with the host (no flake).";
        };
        evaluatedConfig = mkOption {
          type = types.nullOr types.unspecified;
          default = null;
          description = "An already evaluated configuration of this guest.";
        };
        nixpkgs = mkOption {
          type = types.path;
          default = if config.pkgs != null then config.pkgs.path else pkgs.path;
          defaultText = lib.literalExpression "pkgs.path";
          description = "The nixpkgs of an inline guest (`config`).";
        };
        extraModules = mkOption {
          type = types.listOf types.deferredModule;
          default = [ ];
          description = "More NixOS modules of an inline guest (`config`).";
        };
        pkgs = mkOption {
          type = types.nullOr types.unspecified;
          default = pkgs;
          description = "Package set of an inline guest (`config`); decides its system.";
        };
        specialArgs = mkOption {
          type = types.attrsOf types.unspecified;
          default = { };
          description = "Extra module arguments of an inline guest (`config`).";
        };
        flake = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "The flake whose nixosConfigurations.<name> is this guest.";
        };
        updateFlake = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "Flake reference kept for later imperative updates (`microvm -u`).";
        };
        autostart = mkOption {
          type = types.bool;
          default = true;
          description = "Whether to add this guest to microvm.autostart.";
        };
        restartIfChanged = mkOption {
          type = types.bool;
          default = config.config != null;
          description = "Whether a host rebuild that changes the guest restarts it.";
        };
      };
    };
in
{
  _file = "<nixgen-standin>/microvm/nixos-modules/host/options.nix";

  options.microvm = {
    host.enable = mkOption {
      type = types.bool;
      default = true;
      description = "Whether to enable the microvm.nix host module.";
    };
    host.startupTimeout = mkOption {
      type = types.ints.positive;
      default = 150;
      description = "Start-up timeout of the guests, in seconds.";
    };
    host.useNotifySockets = mkOption {
      type = types.bool;
      default = false;
      description = "Whether every guest reports readiness over vsock.";
    };
    vms = mkOption {
      type = types.attrsOf (types.submodule vmOptions);
      default = { };
      description = "The guests built and run declaratively with this host.";
    };
    stateDir = mkOption {
      type = types.path;
      default = "/var/lib/microvms";
      description = "Folder holding one state folder per guest.";
    };
    autostart = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Guests started at boot (declared ones and imperative ones).";
    };
  };
}
