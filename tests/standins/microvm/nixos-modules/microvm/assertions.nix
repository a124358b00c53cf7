# Upstream's evaluation-time checks, as NixOS `assertions` (reported by the
# base modules as "Failed assertions:" when the system is built) and
# `warnings`.
{ config, lib, ... }:
let
  cfg = config.microvm;
  hostName = config.networking.hostName;
  platform = config.nixpkgs.hostPlatform;

  check = assertion: message: {
    inherit assertion;
    message = "MicroVM ${hostName}: ${message}";
  };

  duplicates =
    xs:
    let
      counts = builtins.foldl' (acc: x: acc // { ${x} = (acc.${x} or 0) + 1; }) { } xs;
    in
    builtins.filter (x: counts.${x} > 1) (builtins.attrNames counts);
  quoted = xs: lib.concatMapStringsSep ", " (x: "`${x}'") xs;
  unique =
    what: xs:
    let
      d = duplicates xs;
    in
    check (d == [ ]) "${what} must be unique; duplicated: ${quoted d}";

  virtiofsShares = builtins.filter (s: s.proto == "virtiofs") cfg.shares;
  virtiofsSocket = s: if s.socket != null then s.socket else "${hostName}-virtiofs-${s.tag}.sock";
  translatesIds =
    args:
    builtins.any (a: lib.hasPrefix "--translate-uid" a || lib.hasPrefix "--translate-gid" a) args;
in
{
  config = lib.mkIf cfg.guest.enable {
    assertions = [
      (unique "volume images (microvm.volumes.*.image)" (map (v: v.image) cfg.volumes))
      (unique "interface ids (microvm.interfaces.*.id)" (map (i: i.id) cfg.interfaces))
      (unique "share tags (microvm.shares.*.tag)" (map (s: s.tag) cfg.shares))
      (unique "virtiofs share sockets (microvm.shares.*.socket)" (map virtiofsSocket virtiofsShares))
      (check (
        cfg.forwardPorts == [ ]
        || (cfg.hypervisor == "qemu" && builtins.any (i: i.type == "user") cfg.interfaces)
      ) "microvm.forwardPorts works only with hypervisor qemu and an interface of type user")
    ]
    ++ builtins.concatMap (i: [
      (check (
        i.type == "bridge" -> i.bridge != null
      ) "interface `${i.id}' is of type bridge and must name the host bridge in `bridge'")
      (check (
        i.type != "bridge" -> i.bridge == null
      ) "interface `${i.id}' is of type ${i.type}; only interfaces of type bridge may set `bridge'")
      (check (
        builtins.stringLength i.id <= 15
      ) "interface id `${i.id}' is longer than 15 characters (the limit for Linux interface names)")
    ]) cfg.interfaces
    ++ map (
      s:
      check (
        !(s.posixAcl && translatesIds (cfg.virtiofsd.extraArgs ++ s.extraArgs))
      ) "virtiofs share `${s.tag}' has posixAcl enabled, which conflicts with uid/gid translation (--translate-uid/--translate-gid) in the virtiofsd arguments"
    ) virtiofsShares
    ++ lib.optional (cfg.vsock ? ssh) (
      check (
        !(cfg.vsock.ssh.enable or false) || cfg.vsock.cid != null
      ) "microvm.vsock.ssh.enable needs microvm.vsock.cid"
    );

    warnings =
      lib.optional (cfg.mem < 32) "MicroVM ${hostName}: microvm.mem = ${toString cfg.mem} MiB is very little memory; the guest will probably not boot."
      ++ lib.optional (
        cfg.mem == 2048 && cfg.hypervisor == "qemu" && platform.isx86_64
      ) "MicroVM ${hostName}: microvm.mem = 2048 is known to hang qemu on x86_64; use 2047 or 2049.";
  };
}
