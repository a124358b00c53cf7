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
  # Upstream's share/microvm/macvtap-interfaces: `ID MAC LINK MODE` per
  # interface whose macvtap.link and mode are set.
  macvtapLines = map (i: "${i.id} ${i.mac} ${i.macvtap.link} ${toString i.macvtap.mode}") (
    builtins.filter (
      i: i.type == "macvtap" && (i.macvtap.link or null) != null && (i.macvtap.mode or null) != null
    ) cfg.interfaces
  );
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

  # A real guest to boot: tests/standin.py `prepare_inputs(..., guest=...)`
  # copies a kernel and an initrd (tests/guestimage.py) to guest/ beside the
  # stand-in's flake.nix. Only the qemu runner on x86_64 uses them; without
  # them every runner is a stub that prints a line.
  guestDir = ../../guest;
  guest =
    if
      hypervisor == "qemu"
      && platform.isx86_64
      && builtins.pathExists (guestDir + "/vmlinux")
      && builtins.pathExists (guestDir + "/initrd")
    then
      {
        kernel = builtins.path {
          path = guestDir + "/vmlinux";
          name = "nixgen-test-guest-vmlinux";
        };
        initrd = builtins.path {
          path = guestDir + "/initrd";
          name = "nixgen-test-guest-initrd";
        };
      }
    else
      null;

  runScript = import ./run-script.nix {
    inherit
      lib
      hostName
      hypervisor
      guest
      ;
    inherit (cfg)
      vcpu
      mem
      kernelParams
      socket
      balloon
      ;
    virtiofsShares = map (s: {
      inherit (s) tag mountPoint;
      socket = virtiofsSocket s;
    }) virtiofsShares;
    kernel = kernelFile;
    initrd = cfg.initrdPath;
    storeDisk = cfg.storeDisk;
  };

  # With a real guest: upstream's QMP shutdown (Ctrl-Alt-Del, then wait until
  # QEMU exits), written in Python (./qmp_shutdown.py) with the host's python3.
  # The socket path is relative to the working directory, as upstream's is.
  shutdownScript =
    if guest == null then
      ''
        #!/bin/sh
        echo ${lib.escapeShellArg "microvm-shutdown ${hostName} hypervisor=${hypervisor}"}
      ''
    else if cfg.socket == null then
      ''
        #!/bin/sh
        echo "microvm-shutdown: ${hostName} has no control socket (microvm.socket)" >&2
        exit 1
      ''
    else
      ''
        #!/bin/sh
        PATH="''${PATH:+$PATH:}/usr/bin:/bin"
        exec python3 ${./qmp_shutdown.py} ${sq cfg.socket} "$@"
      '';
  # With a real guest: one virtiofsd per virtiofs share, in the foreground until
  # it is told to stop, as upstream's bin/virtiofsd-run (supervisord) does. It
  # uses the host's virtiofsd: QEMU's C one (-o source=) or the Rust one.
  virtiofsdScript = ''
    #!/bin/sh
    PATH="''${PATH:+$PATH:}/usr/libexec:/usr/lib/qemu:/usr/bin:/bin"
    virtiofsd=$(command -v virtiofsd) || {
      echo "virtiofsd-run: virtiofsd not found (apt-get install qemu-system-common)" >&2
      exit 127
    }
    if "$virtiofsd" --help 2>&1 | grep -q -e --shared-dir; then source=--shared-dir=; else source="-o source="; fi
    pids=
    # QEMU's C virtiofsd names its pid file (/run/virtiofsd/<socket path>.pid)
    # after the socket path it is given: an absolute one keeps two projects'
    # guests of the same name apart. Where it is too long for a socket
    # address, a short link in /tmp named after this folder leads to it.
    ${lib.concatMapStrings (s: ''
      sock=${sq (virtiofsSocket s)}
      case $sock in
        /*) ;;
        *)
          here=$PWD
          if [ $((''${#here} + ''${#sock})) -gt 106 ]; then
            here=/tmp/nixgen-virtiofsd-$(printf %s "$PWD" | cksum | cut -d' ' -f1)
            ln -sfn "$PWD" "$here"
          fi
          sock="$here/$sock"
          ;;
      esac
      # shellcheck disable=SC2086
      "$virtiofsd" --socket-path="$sock" $source${sq s.source} &
      pids="$pids $!"
    '') virtiofsShares}
    trap 'kill $pids 2>/dev/null; wait; exit 0' TERM INT
    wait
  '';
  hasVirtiofsd = guest != null && virtiofsShares != [ ];
  balloonScript = ''
    #!/bin/sh
    echo "microvm-balloon ${hostName} hypervisor=${hypervisor} target=''${1:-}"
  '';

  sq = lib.escapeShellArg;
in
pkgs.runCommand "microvm-${hypervisor}-${hostName}"
  {
    inherit
      runScript
      shutdownScript
      balloonScript
      virtiofsdScript
      ;
    passAsFile = [
      "runScript"
      "shutdownScript"
      "balloonScript"
      "virtiofsdScript"
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
    ${lib.optionalString hasVirtiofsd ''
      cp "$virtiofsdScriptPath" "$out/bin/virtiofsd-run"
      chmod +x "$out/bin/virtiofsd-run"
    ''}
    ln -s "$toplevel" "$out/share/microvm/system"
    printf '%s' ${sq hypervisor} > "$out/share/microvm/hypervisor"
    ${lib.optionalString (tapInterfaces != [ ]) ''
      printf '%s' ${sq (lib.concatStringsSep " " tapInterfaces)} > "$out/share/microvm/tap-interfaces"
    ''}
    ${lib.optionalString (macvtapLines != [ ]) ''
      printf '%s\n' ${lib.escapeShellArgs macvtapLines} > "$out/share/microvm/macvtap-interfaces"
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
