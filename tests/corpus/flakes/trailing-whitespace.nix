{   
  description = "trailing whitespace and no final newline";  
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";	
  inputs.microvm.url = "github:microvm-nix/microvm.nix";

  outputs = { self, nixpkgs, microvm }: {   
    nixosConfigurations.trail = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";   
      modules = [
        microvm.nixosModules.microvm   
        {  
          networking.hostName = "trail";    
          microvm.mem = 1024;	
        }
      ];
    };
  };
}