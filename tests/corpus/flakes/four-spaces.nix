{
    description = "four-space indentation, aarch64 guests";

    inputs = {
        nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
        microvm = {
            url = "github:microvm-nix/microvm.nix";
            inputs.nixpkgs.follows = "nixpkgs";
        };
    };

    outputs = { self, nixpkgs, microvm }: {
        nixosConfigurations.arm = nixpkgs.lib.nixosSystem {
            system = "aarch64-linux";
            modules = [
                microvm.nixosModules.microvm
                {
                    networking.hostName = "arm";
                    microvm = {
                        hypervisor = "cloud-hypervisor";
                        mem = 2048;
                        shares = [
                            {
                                proto = "virtiofs";
                                tag = "ro-store";
                                source = "/nix/store";
                                mountPoint = "/nix/.ro-store";
                            }
                        ];
                    };
                }
            ];
        };
    };
}
