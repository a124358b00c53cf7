{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }: {
    nixosConfigurations.strings = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.microvm
        ({ pkgs, ... }: {
          networking.hostName = "strings";
          # a literal ${ and a literal '' in a script
          environment.etc."motd".text = ''
            Welcome to ''${HOSTNAME}.
            Quote: '''
              indented line
            Dollar: ''$HOME and $PATH
          '';
          environment.etc."issue".text = ''
            generated for ${pkgs.hostPlatform.system}
          '';
          systemd.services.hello.script = ''
            echo "hello" > /tmp/hello
            printf '%s\n' "done"
          '';
          environment.etc."tab".text = ''
            a''\tb
          '';
          environment.etc."oneline".text = ''no newline at the end'';
          environment.etc."plain".text = "line one\nline two\t\"quoted\" \${not interpolated} $$";
          environment.variables.EDITOR = "vim";
          microvm.mem = 512;
        })
      ];
    };
  };
}
