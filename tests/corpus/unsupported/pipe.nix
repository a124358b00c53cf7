{
  outputs = { self, nixpkgs }: {
    packages.x86_64-linux.names = [ "a" "b" ] |> map (n: n + "!");
  };
}
