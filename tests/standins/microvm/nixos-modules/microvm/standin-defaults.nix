# Stand-ins for the defaults upstream computes (options.json records them as
# `default.text`, a Nix expression, or as the value they had for an empty
# guest). Keyed by the option path below `microvm`. Each one follows the
# upstream expression as far as the stub package set allows.
{
  config,
  lib,
  pkgs,
}:
let
  cfg = config.microvm;
  hostPkgs = cfg.vmHostPackages;
  kernelAtLeast = v: lib.versionAtLeast (cfg.kernel.version or "6.12.0") v;
in
{
  vmHostPackages = if cfg.cpu == null then pkgs else pkgs.buildPackages;

  "qemu.package" =
    if cfg.cpu == null && hostPkgs.stdenv.hostPlatform.isLinux then hostPkgs.qemu_kvm else hostPkgs.qemu;
  "cloud-hypervisor.package" =
    if cfg.graphics.enable then hostPkgs.cloud-hypervisor-graphics else hostPkgs.cloud-hypervisor;
  "firecracker.package" = hostPkgs.firecracker;
  "crosvm.package" = hostPkgs.crosvm;
  "kvmtool.package" = hostPkgs.kvmtool;
  "stratovirt.package" = hostPkgs.stratovirt;
  "alioth.package" = hostPkgs.alioth;
  "vfkit.package" = hostPkgs.vfkit;
  "virtiofsd.package" = hostPkgs.virtiofsd;
  "graphics.crosvmPackage" = pkgs.crosvm;
  "graphics.backend" = if pkgs.stdenv.hostPlatform.isDarwin then "cocoa" else "gtk";

  declaredRunner = cfg.runner.${cfg.hypervisor};
  kernel = config.boot.kernelPackages.kernel;
  initrdPath = "${config.system.build.initialRamdisk}/${config.system.boot.loader.initrdFile}";
  socket = "${config.networking.hostName}.sock";

  # The JSON records `true` (the value for a guest without shares); upstream
  # computes it from the shares.
  storeOnDisk = !(builtins.any (s: s.source == "/nix/store") cfg.shares);
  storeDiskErofsFlags = [
    "-zlz4hc"
  ]
  ++ lib.optional (kernelAtLeast "5.16") "-Eztailpacking"
  ++ lib.optional (kernelAtLeast "6.1") "-Efragments";
}
