{
  outputs = { self, nixpkgs }: {
    nixosConfigurations = {}//self.extraConfigurations;
  };
}
