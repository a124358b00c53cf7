# A tiny stand-in package set: a few stub packages and the build helpers
# nixgen-generated modules use. Every derivation is built by /bin/sh with
# host tools (PATH=/usr/bin:/bin), so builds need `sandbox = false`.
{ lib }:
system:
let
  platform = lib.systems.elaborate system;

  prelude = ''
    PATH=/usr/bin:/bin
    export PATH
    set -eu
  '';

  # The one place derivations are made. `env` becomes the builder's
  # environment; passthru attributes are added to the result (and kept under
  # `passthru`, as nixpkgs does); `meta` is attached but never built.
  mkStub =
    {
      name,
      script,
      outputs ? [ "out" ],
      env ? { },
      passthru ? { },
      meta ? { },
    }:
    let
      drv = derivation (
        env
        // {
          inherit name system outputs;
          builder = "/bin/sh";
          args = [
            "-c"
            (prelude + script)
          ];
        }
      );
    in
    drv // passthru // { inherit meta passthru; };

  stubPackage =
    {
      pname,
      version ? "0.0.0-stub",
      bins ? [ pname ],
      mainProgram ? builtins.head bins,
    }:
    mkStub {
      name = "${pname}-${version}";
      env.bins = bins;
      script = ''
        mkdir -p "$out/bin"
        for b in $bins; do
          printf '#!/bin/sh\necho "%s (nixgen stand-in stub of ${pname} ${version})"\n' "$b" > "$out/bin/$b"
          chmod +x "$out/bin/$b"
        done
      '';
      passthru = { inherit pname version; };
      meta = {
        inherit mainProgram;
        description = "nixgen test stub of ${pname}";
        platforms = lib.systems.flakeExposed;
      };
    };

  stubs = builtins.mapAttrs (pname: bins: stubPackage { inherit pname bins; }) {
    hello = [ "hello" ];
    htop = [ "htop" ];
    curl = [ "curl" ];
    git = [ "git" ];
    vim = [ "vim" ];
    jq = [ "jq" ];
    tmux = [ "tmux" ];
    iproute2 = [ "ip" ];
    openssh = [ "ssh" "sshd" ];
    busybox = [ "busybox" ];
    coreutils = [ "ls" "cat" ];
    bash = [ "bash" ];
    e2fsprogs = [ "mkfs.ext4" ];
    erofs-utils = [ "mkfs.erofs" ];
    squashfsTools = [ "mksquashfs" ];
    # Hypervisors and helpers microvm.nix picks from `vmHostPackages`.
    qemu = [ "qemu-system-x86_64" "qemu-system-aarch64" ];
    qemu_kvm = [ "qemu-kvm" ];
    cloud-hypervisor = [ "cloud-hypervisor" "ch-remote" ];
    cloud-hypervisor-graphics = [ "cloud-hypervisor" "ch-remote" ];
    firecracker = [ "firecracker" ];
    crosvm = [ "crosvm" ];
    kvmtool = [ "lkvm" ];
    stratovirt = [ "stratovirt" ];
    alioth = [ "alioth" ];
    vfkit = [ "vfkit" ];
    virtiofsd = [ "virtiofsd" ];
    socat = [ "socat" ];
  };

  writeTextFile =
    {
      name,
      text,
      executable ? false,
      destination ? "",
      ...
    }:
    mkStub {
      inherit name;
      env = {
        inherit text;
        passAsFile = [ "text" ];
      };
      script = ''
        target="$out${destination}"
        mkdir -p "$(dirname "$target")"
        cp "$textPath" "$target"
        ${lib.optionalString executable ''chmod +x "$target"''}
      '';
    };

  runCommand =
    name: env: buildCommand:
    mkStub {
      inherit name;
      env = removeAttrs env [
        "passthru"
        "meta"
      ];
      script = buildCommand;
      passthru = env.passthru or { };
      meta = env.meta or { };
    };

  kernel = mkStub {
    name = "linux-6.12.0-stub";
    outputs = [
      "out"
      "dev"
    ];
    script = ''
      mkdir -p "$out" "$dev"
      echo "nixgen stand-in kernel image (not bootable)" > "$out/bzImage"
      echo "nixgen stand-in kernel image (not bootable)" > "$out/Image"
      echo "nixgen stand-in vmlinux (not bootable)" > "$dev/vmlinux"
    '';
    passthru = rec {
      version = "6.12.0";
      modDirVersion = version;
      kernelAtLeast = lib.versionAtLeast version;
      kernelOlder = lib.versionOlder version;
      features = { };
      config = { };
    };
  };

  pkgs =
    stubs
    // {
      _type = "pkgs";
      inherit system lib;
      stdenv = {
        hostPlatform = platform;
        buildPlatform = platform;
        targetPlatform = platform;
        inherit system;
        isLinux = platform.isLinux;
        isDarwin = platform.isDarwin;
        shell = "/bin/sh";
        mkDerivation =
          args:
          let
            name = args.name or "${args.pname}-${args.version}";
            phases = lib.concatStringsSep "\n" (
              map (p: args.${p} or "") [
                "unpackPhase"
                "buildPhase"
                "installPhase"
              ]
            );
          in
          runCommand name (removeAttrs args [
            "name"
            "buildCommand"
            "unpackPhase"
            "buildPhase"
            "installPhase"
          ]) (args.buildCommand or phases);
      };
      hostPlatform = platform;
      buildPlatform = platform;
      targetPlatform = platform;
      buildPackages = pkgs;
      pkgsBuildBuild = pkgs;
      path = ../.;
      runtimeShell = "/bin/sh";

      inherit writeTextFile runCommand;
      runCommandLocal = runCommand;
      runCommandNoCC = runCommand;
      writeText = name: text: writeTextFile { inherit name text; };
      writeTextDir =
        path: text:
        writeTextFile {
          name = baseNameOf path;
          inherit text;
          destination = "/${path}";
        };
      writeScript =
        name: text:
        writeTextFile {
          inherit name text;
          executable = true;
        };
      writeScriptBin =
        name: text:
        writeTextFile {
          inherit name text;
          executable = true;
          destination = "/bin/${name}";
        };
      writeShellScript = name: text: pkgs.writeScript name "#!/bin/sh\n${text}";
      writeShellScriptBin = name: text: pkgs.writeScriptBin name "#!/bin/sh\n${text}";
      writeShellApplication =
        {
          name,
          text,
          runtimeInputs ? [ ],
          ...
        }:
        pkgs.writeShellScriptBin name ''
          set -eu
          ${lib.optionalString (runtimeInputs != [ ]) ''export PATH="${lib.makeBinPath runtimeInputs}:$PATH"''}
          ${text}
        '';

      symlinkJoin =
        {
          name,
          paths,
          postBuild ? "",
          ...
        }:
        runCommand name { inherit paths; } ''
          mkdir -p "$out"
          for p in $paths; do
            (cd "$p" && find . -type d) | while IFS= read -r d; do mkdir -p "$out/''${d#./}"; done
            (cd "$p" && find . ! -type d) | while IFS= read -r f; do ln -sf "$p/''${f#./}" "$out/''${f#./}"; done
          done
          ${postBuild}
        '';

      # `registration` holds the closure of `rootPaths` in the format of
      # `nix-store --register-validity` (path, deriver, reference count,
      # references), taken from `exportReferencesGraph`; `store-paths` lists
      # the paths. Real nixpkgs writes `nix-store --load-db` input (with
      # hashes and sizes); the file name and its role are the same.
      closureInfo =
        { rootPaths }:
        mkStub {
          name = "closure-info";
          env.exportReferencesGraph = lib.concatLists (
            lib.imap0 (i: p: [
              "closure-${toString i}"
              p
            ]) rootPaths
          );
          script = ''
            mkdir -p "$out"
            : > "$out/registration"
            : > seen
            for f in closure-*; do
              [ -e "$f" ] || continue
              while IFS= read -r path; do
                IFS= read -r deriver
                IFS= read -r count
                refs=""
                i=0
                while [ "$i" -lt "$count" ]; do
                  IFS= read -r ref
                  refs="$refs$ref
            "
                  i=$((i + 1))
                done
                if ! grep -qxF "$path" seen; then
                  echo "$path" >> seen
                  printf '%s\n%s\n%s\n%s' "$path" "$deriver" "$count" "$refs" >> "$out/registration"
                fi
              done < "$f"
            done
            sort seen > "$out/store-paths"
          '';
        };

      linuxPackages = {
        inherit kernel;
      };
      linuxPackages_latest = pkgs.linuxPackages;
      linux = kernel;

      callPackage =
        fn: args:
        let
          f = if builtins.isFunction fn then fn else import fn;
        in
        f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // args);

      formats.json =
        _:
        {
          type = lib.types.anything // {
            description = "JSON value";
            descriptionClass = null;
          };
          generate = name: value: pkgs.writeText name (builtins.toJSON value);
        };
    };
in
pkgs
