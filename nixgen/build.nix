# What nixgen needs to know about guests before and after building them.
#
# Both functions are applied (`nix eval --json FLAKE#nixosConfigurations
# --apply`) to a flake's nixosConfigurations. `describe` takes a list of guest
# names, or null for every guest. Nothing here builds: store paths are read
# from derivations without realising them.
let
  # A guest imports microvm.nix's guest module; a host (microvm.host) has no
  # runner. The option tree says which, even when a definition is wrong (a
  # host with a misspelt option is still a host, checked as one by
  # nixgen/flake-hosts). A configuration whose modules cannot even be loaded
  # counts as a guest, so that describing it reports its error.
  isGuest =
    configuration:
    let
      probe = builtins.tryEval (
        configuration.options ? microvm && configuration.options.microvm ? declaredRunner
      );
    in
    !probe.success || probe.value;

  guestNames =
    configurations: builtins.filter (n: isGuest configurations.${n}) (builtins.attrNames configurations);

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

  describeOne =
    configurations: name:
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
{
  inherit guestNames;
  describe =
    names: configurations:
    builtins.listToAttrs (
      map (describeOne configurations) (if names == null then guestNames configurations else names)
    );
}
