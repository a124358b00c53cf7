{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";
  inputs.microvm.inputs.nixpkgs.follows = "nixpkgs";

  outputs = { self, nixpkgs, microvm, ... }: {
    nixosConfigurations = {
      web = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          {
            networking.hostName = "web";
            microvm.hypervisor = "qemu";
            microvm.mem = 1024;
            microvm.vcpu = 2;
            microvm.interfaces = [ { type = "user"; id = "qemu"; mac = "02:00:00:01:01:01"; } ];
            microvm.forwardPorts = [ { from = "host"; host.port = 8080; guest.port = 80; } ];
            services.nginx.enable = true;
            networking.firewall.allowedTCPPorts = [ 80 ];
          }
        ];
      };

      db = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          microvm.nixosModules.microvm
          {
            networking.hostName = "db";
            microvm = {
              hypervisor = "qemu";
              mem = 2560;
              volumes = [
                { image = "pg.img"; mountPoint = "/var/lib/postgresql"; size = 4096; }
              ];
            };
            services.postgresql.enable = true;
          }
        ];
      };

      cache = nixpkgs.lib.nixosSystem {
        system = "aarch64-linux";
        modules = [
          microvm.nixosModules.microvm
          {
            networking.hostName = "cache";
            microvm.hypervisor = "firecracker";
            microvm.mem = 256;
            services.redis.servers."".enable = true;
          }
        ];
      };
    };

    packages.x86_64-linux = {
      web = self.nixosConfigurations.web.config.microvm.declaredRunner;
      db = self.nixosConfigurations.db.config.microvm.declaredRunner;
      default = self.packages.x86_64-linux.web;
    };
  };
}
