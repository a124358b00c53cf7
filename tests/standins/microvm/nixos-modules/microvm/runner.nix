# One stub runner package per hypervisor, laid out like upstream's runners:
# bin/microvm-run (from ./run-script.nix), bin/microvm-shutdown and
# bin/microvm-balloon where the hypervisor supports them, and the
# share/microvm/* files a host manager reads.
{
  config,
  lib,
  pkgs,
}:
hypervisor:
let
  cfg = config.microvm;
  hostName = config.networking.hostName;
  platform = pkgs.stdenv.hostPlatform;

  canShutdown = builtins.elem hypervisor [
    "qemu"
    "cloud-hypervisor"
    "firecracker"
    "crosvm"
    "vfkit"
  ];
  canBalloon =
    builtins.elem hypervisor [
      "qemu"
      "cloud-hypervisor"
      "kvmtool"
    ]
    || (hypervisor == "crosvm" && cfg.socket != null);

  idsOfType = type: map (i: i.id) (builtins.filter (i: i.type == type) cfg.interfaces);
  tapInterfaces = idsOfType "tap";
  macvtapInterfaces = idsOfType "macvtap";
  virtiofsShares = builtins.filter (s: s.proto == "virtiofs") cfg.shares;
  virtiofsSocket = s: if s.socket != null then s.socket else "${hostName}-virtiofs-${s.tag}.sock";

  # Which kernel file the hypervisor boots (see the reference notes).
  kernelFile =
    if platform.isAarch64 then
      "${cfg.kernel}/Image"
    else if
      builtins.elem hypervisor [
        "cloud-hypervisor"
        "firecracker"
        "crosvm"
      ]
    then
      "${cfg.kernel.dev or cfg.kernel}/vmlinux"
    else
      "${cfg.kernel}/bzImage";

  runScript = import ./run-script.nix {
    inherit lib hostName hypervisor;
    inherit (cfg)
      vcpu
      mem
      kernelParams
      socket
      ;
    kernel = kernelFile;
    initrd = cfg.initrdPath;
    storeDisk = cfg.storeDisk;
  };

  shutdownScript = ''
    #!/bin/sh
    echo ${lib.escapeShellArg "microvm-shutdown ${hostName} hypervisor=${hypervisor}"}
  '';
  balloonScript = ''
    #!/bin/sh
    echo "microvm-balloon ${hostName} hypervisor=${hypervisor} target=''${1:-}"
  '';

  sq = lib.escapeShellArg;
in
pkgs.runCommand "microvm-${hypervisor}-${hostName}"
  {
    inherit runScript shutdownScript balloonScript;
    passAsFile = [
      "runScript"
      "shutdownScript"
      "balloonScript"
    ];
    toplevel = config.system.build.toplevel;
    meta.mainProgram = "microvm-run";
    passthru = {
      inherit hypervisor canShutdown canBalloon;
      nixgenStandin = true;
    };
  }
  ''
    mkdir -p "$out/bin" "$out/share/microvm"
    cp "$runScriptPath" "$out/bin/microvm-run"
    chmod +x "$out/bin/microvm-run"
    ${lib.optionalString canShutdown ''
      cp "$shutdownScriptPath" "$out/bin/microvm-shutdown"
      chmod +x "$out/bin/microvm-shutdown"
    ''}
    ${lib.optionalString canBalloon ''
      cp "$balloonScriptPath" "$out/bin/microvm-balloon"
      chmod +x "$out/bin/microvm-balloon"
    ''}
    ln -s "$toplevel" "$out/share/microvm/system"
    printf '%s' ${sq hypervisor} > "$out/share/microvm/hypervisor"
    ${lib.optionalString (tapInterfaces != [ ]) ''
      printf '%s' ${sq (lib.concatStringsSep " " tapInterfaces)} > "$out/share/microvm/tap-interfaces"
    ''}
    ${lib.optionalString (macvtapInterfaces != [ ]) ''
      printf '%s' ${sq (lib.concatStringsSep " " macvtapInterfaces)} > "$out/share/microvm/macvtap-interfaces"
    ''}
    ${lib.optionalString (cfg.vsock.cid != null) ''
      printf '%s' ${sq (toString cfg.vsock.cid)} > "$out/share/microvm/vsock-cid"
    ''}
    ${lib.concatMapStrings (s: ''
      mkdir -p "$out/share/microvm/virtiofs/"${sq s.tag}
      printf '%s' ${sq (virtiofsSocket s)} > "$out/share/microvm/virtiofs/"${sq s.tag}/socket
      printf '%s' ${sq s.source} > "$out/share/microvm/virtiofs/"${sq s.tag}/source
    '') virtiofsShares}
  ''
