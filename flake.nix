{
  description = "nixgen: declare NixOS micro-VM guests (microvm.nix) in Python, get a readable flake";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    {
      self,
      nixpkgs,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # `nix flake init -t <nixgen>#NAME`: the same templates as `nixgen init -t NAME`.
      # templates/flake.nix has them too, without inputs, so that
      # `nix flake init -t <nixgen>?dir=templates#NAME` needs nothing fetched.
      templates = import ./templates/templates.nix;

      # `nix run <nixgen> -- init DIR`
      packages = forAllSystems (pkgs: {
        default = pkgs.python3Packages.buildPythonApplication {
          pname = "nixgen";
          version = (builtins.fromTOML (builtins.readFile ./pyproject.toml)).project.version;
          pyproject = true;
          src = ./.;
          build-system = [ pkgs.python3Packages.hatchling ];
          dependencies = with pkgs.python3Packages; [
            attrs
            click
            filelock
            graphviz
            jinja2
            qemu-qmp
            rich
            tomli-w
            tomlkit
            tree-sitter
            tree-sitter-language-pack
          ];
          # pyproject pins the PyPI releases known to work offline; nixpkgs builds its own.
          pythonRelaxDeps = [
            "tree-sitter"
            "tree-sitter-language-pack"
          ];
          pythonImportsCheck = [ "nixgen" ];
          meta.mainProgram = "nixgen";
        };
      });
    };
}
