# Platform descriptions: just the flags nixgen and microvm modules look at.
lib: {
  flakeExposed = [
    "x86_64-linux"
    "aarch64-linux"
    "x86_64-darwin"
    "aarch64-darwin"
  ];

  elaborate =
    platform:
    let
      system = if builtins.isString platform then platform else platform.system;
      parts = builtins.match "([^-]+)-(.+)" system;
      cpu = if parts == null then system else builtins.head parts;
      kernel = if parts == null then "unknown" else builtins.elemAt parts 1;
    in
    (if builtins.isAttrs platform then platform else { })
    // {
      inherit system;
      config = system;
      parsed = {
        cpu.name = cpu;
        kernel.name = kernel;
      };
      isLinux = kernel == "linux";
      isDarwin = kernel == "darwin";
      isx86_64 = cpu == "x86_64";
      isx86 = cpu == "x86_64" || cpu == "i686";
      isAarch64 = cpu == "aarch64";
      isAarch = cpu == "aarch64";
      isRiscV64 = cpu == "riscv64";
      is64bit = cpu == "x86_64" || cpu == "aarch64" || cpu == "riscv64";
      linuxArch =
        if cpu == "x86_64" then
          "x86_64"
        else if cpu == "aarch64" then
          "arm64"
        else
          cpu;
      qemuArch = cpu;
      canExecute = other: (lib.systems.elaborate other).system == system;
    };
}
