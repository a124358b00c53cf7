# What nixgen needs to know about guests before and after building them.
#
# Applied (`nix eval --json FLAKE#nixosConfigurations --apply`) to a flake's
# nixosConfigurations; `names` is a list of guest names, or null for every
# configuration that imports microvm.nix's guest module. Nothing here builds:
# store paths are read from derivations without realising them.
names: configurations:
let
  isGuest = name: configurations.${name}.config ? microvm && configurations.${name}.config.microvm ? declaredRunner;
  chosen = if names == null then builtins.filter isGuest (builtins.attrNames configurations) else names;

  # The closure registration is passed to the guest kernel as `regInfo=PATH`.
  prefixed =
    prefix: list:
    let
      found = builtins.filter (p: builtins.substring 0 (builtins.stringLength prefix) p == prefix) list;
    in
    if found == [ ] then
      null
    else
      builtins.substring (builtins.stringLength prefix) (-1) (builtins.head found);

  outputsOf = drv: builtins.listToAttrs (map (o: { name = o; value = drv.${o}.outPath; }) (drv.outputs or [ "out" ]));

  describe =
    name:
    let
      config = configurations.${name}.config;
      microvm = config.microvm;
      runner = microvm.declaredRunner;
      storeOnDisk = microvm.storeOnDisk or false;
    in
    {
      inherit name;
      value = {
        hypervisor = microvm.hypervisor;
        system = configurations.${name}.pkgs.stdenv.hostPlatform.system or null;
        hostName = config.networking.hostName or name;
        # (not a set with outPath: toJSON would turn it into that one string)
        runnerDrv = runner.drvPath;
        runnerOut = runner.outPath;
        kernel = outputsOf microvm.kernel;
        initrd = microvm.initrdPath;
        regInfo = prefixed "regInfo=" (microvm.kernelParams or [ ]);
        toplevel = config.system.build.toplevel.outPath;
        storeDisk = if storeOnDisk && microvm ? storeDisk then microvm.storeDisk.outPath else null;
      };
    };
in
builtins.listToAttrs (map describe chosen)
