# The stand-in guest module: `microvm.*` options generated from options.json
# (strict: every upstream name, type and enum value, nothing else), stand-in
# defaults, stub runners for every hypervisor and upstream's evaluation-time
# checks as `assertions`.
{
  imports = [
    ./options.nix
    ./config.nix
    ./assertions.nix
  ];
}
