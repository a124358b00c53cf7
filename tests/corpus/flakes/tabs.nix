{
	description = "indented with tabs";
	inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
	inputs.microvm.url = "github:microvm-nix/microvm.nix";

	outputs = { self, nixpkgs, microvm }: {
		nixosConfigurations.tabbed = nixpkgs.lib.nixosSystem {
			system = "x86_64-linux";
			modules = [
				microvm.nixosModules.microvm
				{
					networking.hostName = "tabbed";
					microvm = {
						mem = 768;
						vcpu = 1;
					};
					environment.etc."tabbed".text = ''
						tab-indented content keeps its tabs
					'';
				}
			];
		};
	};
}
