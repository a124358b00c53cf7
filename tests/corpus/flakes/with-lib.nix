{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }:
    with nixpkgs.lib; {
      nixosConfigurations.withvm = nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          ({ pkgs, ... }: with pkgs; {
            networking.hostName = "withvm";
            environment.systemPackages = [ htop tmux ];
            microvm.mem = 640;
            microvm.kernelParams = [ "console=ttyS0" "quiet" ];
            boot.kernelPackages = mkForce linuxPackages_latest;
          })
        ];
      };
    };
}
