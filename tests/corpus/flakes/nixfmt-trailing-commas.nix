{
  description = "Guests formatted by nixfmt (RFC 166): trailing commas in formals";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
    microvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      microvm,
      ...
    }@inputs:
    let
      system = "x86_64-linux";
      mkModule =
        {
          name,
          mem ? 512,
        }:
        {
          networking.hostName = name;
          microvm.mem = mem;
        };
    in
    {
      nixosConfigurations.web = nixpkgs.lib.nixosSystem {
        inherit system;
        specialArgs = { inherit inputs; };
        modules = [
          microvm.nixosModules.microvm
          (
            {
              config,
              lib,
              pkgs,
              ...
            }:
            {
              networking.hostName = "web";
              microvm = {
                hypervisor = "cloud-hypervisor";
                mem = 1024;
                vcpu = 2;
                interfaces = [
                  {
                    type = "tap";
                    id = "vm-web";
                    mac = "02:00:00:00:00:01";
                  }
                ];
                shares = [
                  {
                    proto = "virtiofs";
                    tag = "ro-store";
                    source = "/nix/store";
                    mountPoint = "/nix/.ro-store";
                  }
                ];
              };
              environment.systemPackages = [ pkgs.curl ];
              system.stateVersion = lib.trivial.release;
            }
          )
        ];
      };

      nixosConfigurations.small = nixpkgs.lib.nixosSystem {
        inherit system;
        modules = [
          microvm.nixosModules.microvm
          (mkModule { name = "small"; })
        ];
      };

      packages.${system}.web = self.nixosConfigurations.web.config.microvm.declaredRunner;
    };
}
