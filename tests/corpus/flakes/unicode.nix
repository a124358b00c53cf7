{
  description = "Ünïcödé: 日本語のゲスト, emoji 🚀, and RTL שלום";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }: {
    # ゲストの定義 — comments in Japanese, with “curly quotes”
    nixosConfigurations."gäst" = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        microvm.nixosModules.microvm
        {
          networking.hostName = "gaest";
          users.users.root.description = "Rööt — the ŝuperuser 🚀";
          environment.etc."grüße".text = ''
            Grüße aus dem Gast! ✓
            こんにちは
          '';
          microvm.mem = 512;
        }
      ];
    };
  };
}
