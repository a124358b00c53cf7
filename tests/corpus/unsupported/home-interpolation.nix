{ user, ... }:
{
  environment.etc."profile".source = ~/${user}/profile;
}
