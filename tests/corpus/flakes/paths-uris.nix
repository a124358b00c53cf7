{
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm.url = "git+https://github.com/microvm-nix/microvm.nix?ref=main";
    secrets = { url = "path:/etc/secrets"; flake = false; };
  };

  outputs = { self, nixpkgs, microvm, secrets }: {
    nixosConfigurations.paths = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.microvm
        {
          networking.hostName = "paths";
          # a bare URI is a string
          environment.etc."source".text = https://example.org/index.html;
          environment.etc."relative".source = ./files/motd;
          environment.etc."parent".source = ../shared/issue;
          environment.etc."absolute".source = /etc/hostname;
          environment.etc."home".source = ~/dotfiles/bashrc;
          environment.etc."channel".source = <nixpkgs/nixos/README.md>;
          environment.etc."interpolated".source = ./files/${"motd"};
          environment.etc."secret".source = "${secrets}/token";
          microvm.shares = [
            { tag = "data"; source = "/srv/data"; mountPoint = "/data"; proto = "virtiofs"; }
          ];
        }
      ];
    };
  };
}
