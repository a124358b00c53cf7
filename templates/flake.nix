{
  description = "nixgen's project templates: nix flake init -t <nixgen>?dir=templates#NAME";

  # No inputs: `nix flake init -t` reads the templates without fetching anything.
  outputs = _: {
    templates = import ./templates.nix;
  };
}
