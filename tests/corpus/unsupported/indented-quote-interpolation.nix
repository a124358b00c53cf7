{ name, greeting, ... }:
{
  environment.etc."hello".text = ''
    ${greeting}'${name}
  '';
}
