"""The stand-in nixpkgs and microvm.nix inputs, checked with the real ``nix``.

One hand-written flake in upstream's template shape holds every guest used
here. The guests that must build are built by a single ``nix build`` (module
scope); each guest that must fail is built on its own and its error checked.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nixgen.schema import packaged_schema
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    override_args,
    prepare_inputs,
)

pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON),
]

SYSTEM = "x86_64-linux"
HYPERVISORS = (
    "qemu",
    "cloud-hypervisor",
    "firecracker",
    "crosvm",
    "kvmtool",
    "stratovirt",
    "alioth",
    "vfkit",
)
CAN_SHUT_DOWN = {"qemu", "cloud-hypervisor", "firecracker", "crosvm", "vfkit"}
CAN_BALLOON = {"qemu", "cloud-hypervisor", "crosvm", "kvmtool"}
USER_NETWORKING = {"qemu", "kvmtool", "vfkit"}
VIRTIOFS_ONLY = {"cloud-hypervisor", "stratovirt", "alioth", "vfkit"}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA test"
STUB_PACKAGES = {
    "hello": "hello",
    "htop": "htop",
    "curl": "curl",
    "git": "git",
    "vim": "vim",
    "jq": "jq",
    "tmux": "tmux",
    "iproute2": "ip",
    "openssh": "ssh",
    "busybox": "busybox",
}

RO_STORE = (
    '{ proto = "9p"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; }'
)


def _iface(kind: str, ident: str) -> str:
    return f'{{ type = "{kind}"; id = "{ident}"; mac = "02:00:00:00:00:01"; }}'


def _hypervisor_guest(hv: str) -> str:
    """A guest for *hv*: a user or tap interface, the store over 9p or virtiofs."""
    user = hv in USER_NETWORKING
    iface = _iface("user", "vm-user") if user else _iface("tap", "vm-tap")
    shares = ""
    if hv in VIRTIOFS_ONLY:
        shares = RO_STORE.replace('"9p"', '"virtiofs"')
    elif hv != "firecracker":
        shares = RO_STORE
    return (
        f'{{ microvm = {{ hypervisor = "{hv}"; vcpu = 2; mem = 768; '
        f"interfaces = [ {iface} ]; shares = [ {shares} ]; }}; }}"
    )


# name -> module (Nix text). All of these must evaluate and build.
GOOD_GUESTS: dict[str, str] = {
    "freeform": f"""({{ pkgs, lib, ... }}: {{
        services.openssh.enable = true;
        services.openssh.settings.PasswordAuthentication = lib.mkDefault false;
        users.users.root.openssh.authorizedKeys.keys = [ "{SSH_KEY}" ];
        environment.systemPackages = [ pkgs.htop pkgs.jq ];
        networking.firewall.allowedTCPPorts = [ 22 ];
        systemd.services.demo.serviceConfig.ExecStart = "${{pkgs.hello}}/bin/hello";
        boot.kernelParams = [ "quiet" ];
        system.stateVersion = "24.11";
        microvm.shares = [ {RO_STORE} ];
        microvm.interfaces = [ {_iface("user", "vm-user")} ];
      }})""",
    "store-disk": f"""{{
        microvm.vsock.cid = 3;
        microvm.interfaces = [
          {_iface("tap", "vm-disk")}
          {{ type = "macvtap"; id = "vm-mv"; mac = "02:00:00:00:00:02";
            macvtap = {{ link = "eth0"; mode = "bridge"; }}; }}
        ];
      }}""",
    **{f"hv-{hv}": _hypervisor_guest(hv) for hv in HYPERVISORS},
}
GOOD_GUESTS["freeform-merged"] = f"""{{
        imports = [
          {GOOD_GUESTS["freeform"]}
          {{
            networking.firewall.allowedTCPPorts = [ 80 ];
            services.openssh.settings.PasswordAuthentication = true;
          }}
        ];
      }}"""

# name -> (module, substrings the error must contain)
BAD_GUESTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "misspelt-option": (
        "{ microvm.memory = 1024; }",
        ("The option `microvm.memory' does not exist. Definition values:", "1024"),
    ),
    "misspelt-suboption": (
        '{ microvm.interfaces = [ { typ = "tap"; id = "vm-x"; mac = "02:00:00:00:00:01"; } ]; }',
        ('The option `microvm.interfaces."[definition 1-entry 1]".typ\' does not exist',),
    ),
    "misspelt-toplevel": (
        "{ servics.openssh.enable = true; }",
        ("The option `servics' does not exist",),
    ),
    "wrong-type": (
        '{ microvm.mem = "lots"; }',
        (
            "A definition for option `microvm.mem' is not of type "
            "`positive integer, meaning >0'. Definition values:",
            '"lots"',
        ),
    ),
    "bad-enum": (
        '{ microvm.hypervisor = "vmware"; }',
        (
            "A definition for option `microvm.hypervisor' is not of type "
            '`one of "qemu", "cloud-hypervisor", "firecracker", "crosvm", "kvmtool", '
            '"stratovirt", "alioth", "vfkit"\'',
        ),
    ),
    "duplicate-interface-id": (
        f"{{ microvm.interfaces = [ {_iface('tap', 'vm-a')} {_iface('tap', 'vm-a')} ]; }}",
        ("Failed assertions:\n- MicroVM duplicate-interface-id: interface ids", "`vm-a'"),
    ),
    "duplicate-volume-image": (
        "{ microvm.volumes = [ "
        '{ image = "var.img"; mountPoint = "/var"; size = 64; } '
        '{ image = "var.img"; mountPoint = "/srv"; size = 64; } ]; }',
        ("Failed assertions:", "volume images", "`var.img'"),
    ),
    "duplicate-share-tag": (
        f"{{ microvm.shares = [ {RO_STORE} {RO_STORE} ]; }}",
        ("Failed assertions:", "share tags", "`ro-store'"),
    ),
    "bridge-without-bridge": (
        f"{{ microvm.interfaces = [ {_iface('bridge', 'vm-br')} ]; }}",
        ("Failed assertions:", "`vm-br' is of type bridge"),
    ),
    "long-interface-id": (
        f"{{ microvm.interfaces = [ {_iface('tap', 'vm-0123456789abcdef')} ]; }}",
        ("Failed assertions:", "longer than 15 characters"),
    ),
    "forward-ports-without-user": (
        '{ microvm.hypervisor = "firecracker"; microvm.interfaces = [ '
        + _iface("tap", "vm-fc")
        + " ]; microvm.forwardPorts = [ { host.port = 2222; guest.port = 22; } ]; }",
        ("Failed assertions:", "forwardPorts works only with hypervisor qemu"),
    ),
}

FLAKE_TEMPLATE = """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.microvm = {
    url = "github:microvm-nix/microvm.nix";
    inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    { self, nixpkgs, microvm }:
    let
      system = "x86_64-linux";
      lib = nixpkgs.lib;
      # The other guests: the template's shape with different settings.
      guest =
        name: module:
        nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            microvm.nixosModules.microvm
            { networking.hostName = name; }
            module
          ];
        };
      guests = {
@GUESTS@
      };
      stubs = builtins.listToAttrs (
        map (n: lib.nameValuePair "pkg-${n}" nixpkgs.legacyPackages.${system}.${n}) [ @STUBS@ ]
      );
    in
    {
      nixosConfigurations = guests // {
        my-microvm = nixpkgs.lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            microvm.nixosModules.microvm
            {
              networking.hostName = "my-microvm";
              users.users.root.password = "";
              microvm = {
                hypervisor = "qemu";
                mem = 512;
                vcpu = 1;
                socket = "control.socket";
                volumes = [
                  {
                    mountPoint = "/var";
                    image = "var.img";
                    size = 256;
                  }
                ];
                shares = [
                  {
                    proto = "9p";
                    tag = "ro-store";
                    source = "/nix/store";
                    mountPoint = "/nix/.ro-store";
                  }
                ];
                interfaces = [
                  {
                    type = "user";
                    id = "vm-user";
                    mac = "02:00:00:00:00:01";
                  }
                ];
              };
            }
          ];
        };
        arm = nixpkgs.lib.nixosSystem {
          system = "aarch64-linux";
          modules = [
            microvm.nixosModules.microvm
            { networking.hostName = "arm"; }
          ];
        };
      };

      packages.x86_64-linux =
        builtins.mapAttrs (_: g: g.config.microvm.declaredRunner) guests
        // stubs
        // {
          my-microvm = self.nixosConfigurations.my-microvm.config.microvm.declaredRunner;
          default = self.nixosConfigurations.my-microvm.config.microvm.declaredRunner;
        };

      # The packages that must build, by name (nix build --json output is
      # matched to them by drvPath, Nix 2.8 does not keep the order).
      drvPaths = builtins.mapAttrs (_: p: p.drvPath) (
        builtins.removeAttrs self.packages.x86_64-linux [ @BAD@ ]
      );

      optionTypes = builtins.listToAttrs (
        map (o: lib.nameValuePair o.name o.type) (
          lib.optionAttrSetToDocList self.nixosConfigurations.my-microvm.options.microvm
        )
      );
    };
}
"""


def _flake_text() -> str:
    modules = {**GOOD_GUESTS, **{name: module for name, (module, _) in BAD_GUESTS.items()}}
    guests = "\n".join(f'        "{n}" = guest "{n}" {m};' for n, m in modules.items())
    return (
        FLAKE_TEMPLATE.replace("@GUESTS@", guests)
        .replace("@BAD@", " ".join(f'"{name}"' for name in BAD_GUESTS))
        .replace("@STUBS@", " ".join(f'"{name}"' for name in STUB_PACKAGES))
    )


@dataclass(frozen=True)
class Nix:
    """Runs nix offline against one flake, with the stand-in inputs."""

    flake: Path
    inputs: Mapping[str, Path]
    env: Mapping[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nix", *args, *override_args(self.inputs)],
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def ref(self, attr: str) -> str:
        return f"path:{self.flake}#{attr}"

    def eval_json(self, attr: str) -> Any:
        proc = self.run("eval", "--json", self.ref(attr))
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def build(self, *attrs: str) -> list[dict[str, Any]]:
        proc = self.run("build", "--json", "--no-link", "-j", "2", *map(self.ref, attrs))
        assert proc.returncode == 0, proc.stderr
        result: list[dict[str, Any]] = json.loads(proc.stdout)
        return result


@pytest.fixture(scope="module")
def nix(tmp_path_factory: pytest.TempPathFactory) -> Nix:
    root = tmp_path_factory.mktemp("standins")
    flake = root / "flake"
    flake.mkdir()
    (flake / "flake.nix").write_text(_flake_text(), encoding="utf-8")
    return Nix(flake=flake, inputs=prepare_inputs(root / "inputs"), env=offline_nix_env(root))


@pytest.fixture(scope="module")
def built(nix: Nix) -> dict[str, Path]:
    """Every good package, built by one nix call: name -> output path."""
    drv_paths: dict[str, str] = nix.eval_json("drvPaths")
    names = sorted(drv_paths)
    results = nix.build(*(f"packages.{SYSTEM}.{name}" for name in names))
    by_drv = {entry["drvPath"]: Path(entry["outputs"]["out"]) for entry in results}
    return {name: by_drv[drv_paths[name]] for name in names}


def _run(program: Path) -> str:
    proc = subprocess.run([str(program)], capture_output=True, text=True, check=True, timeout=30)
    return proc.stdout.strip()


def test_template_guest_runner_runs(built: dict[str, Path]) -> None:
    runner = built["default"]
    assert runner == built["my-microvm"]
    assert runner.name.endswith("-microvm-qemu-my-microvm")
    run = runner / "bin" / "microvm-run"
    assert run.is_file()
    assert _run(run) == "microvm-run my-microvm hypervisor=qemu vcpu=1 mem=512"
    assert (runner / "bin" / "microvm-shutdown").is_file()
    assert (runner / "bin" / "microvm-balloon").is_file()
    assert (runner / "share" / "microvm" / "hypervisor").read_text() == "qemu"
    system = runner / "share" / "microvm" / "system"
    assert system.is_symlink()
    assert (system / "init").is_file()
    assert (system / "etc" / "hostname").read_text().strip() == "my-microvm"


def test_runner_meta_and_artifacts(nix: Nix) -> None:
    cfg = "nixosConfigurations.my-microvm.config"
    assert nix.eval_json(f"packages.{SYSTEM}.default.meta.mainProgram") == "microvm-run"
    kernel = nix.eval_json(f"{cfg}.microvm.kernel.outPath")
    assert kernel == nix.eval_json(f"{cfg}.boot.kernelPackages.kernel.outPath")
    assert nix.eval_json(f"{cfg}.boot.kernelPackages.kernel.outputs") == ["out", "dev"]
    initrd = nix.eval_json(f"{cfg}.microvm.initrdPath")
    assert initrd == nix.eval_json(f"{cfg}.system.build.initialRamdisk.outPath") + "/initrd"
    assert nix.eval_json(f"{cfg}.networking.hostName") == "my-microvm"
    assert nix.eval_json(f"{cfg}.microvm.socket") == "control.socket"
    assert nix.eval_json(f"{cfg}.microvm.storeOnDisk") is False
    assert nix.eval_json(f"{cfg}.microvm.storeDisk") is None


def test_kernel_params_register_the_closure(nix: Nix, built: dict[str, Path]) -> None:
    params: list[str] = nix.eval_json("nixosConfigurations.my-microvm.config.microvm.kernelParams")
    reg = [p.removeprefix("regInfo=") for p in params if p.startswith("regInfo=")]
    assert len(reg) == 1, params
    registration = Path(reg[0])
    assert registration.name == "registration"
    assert registration.is_file()  # built as part of the runner's closure
    toplevel = nix.eval_json("nixosConfigurations.my-microvm.config.system.build.toplevel.outPath")
    assert f"init={toplevel}/init" in params
    assert toplevel in registration.read_text().splitlines()
    assert (registration.parent / "store-paths").is_file()


def test_store_disk_when_nix_store_is_not_shared(nix: Nix, built: dict[str, Path]) -> None:
    cfg = "nixosConfigurations.store-disk.config.microvm"
    assert nix.eval_json(f"{cfg}.storeOnDisk") is True
    disk = Path(nix.eval_json(f"{cfg}.storeDisk.outPath"))
    assert disk.is_file()
    assert nix.eval_json(f"{cfg}.storeDisk.passthru.regInfo.outPath") == nix.eval_json(
        f"{cfg}.storeDisk.regInfo.outPath"
    )
    share = built["store-disk"] / "share" / "microvm"
    assert (share / "tap-interfaces").read_text() == "vm-disk"
    # upstream's format: ID MAC LINK MODE, a line each
    assert (share / "macvtap-interfaces").read_text() == "vm-mv 02:00:00:00:00:02 eth0 bridge\n"
    assert (share / "vsock-cid").read_text() == "3"


@pytest.mark.parametrize("hv", HYPERVISORS)
def test_every_hypervisor_builds_its_runner(hv: str, built: dict[str, Path]) -> None:
    runner = built[f"hv-{hv}"]
    assert runner.name.endswith(f"-microvm-{hv}-hv-{hv}")
    expected = f"microvm-run hv-{hv} hypervisor={hv} vcpu=2 mem=768"
    assert _run(runner / "bin" / "microvm-run") == expected
    assert (runner / "bin" / "microvm-shutdown").exists() == (hv in CAN_SHUT_DOWN)
    assert (runner / "bin" / "microvm-balloon").exists() == (hv in CAN_BALLOON)
    share = runner / "share" / "microvm"
    assert (share / "hypervisor").read_text() == hv
    assert (share / "system").is_symlink()
    tap = share / "tap-interfaces"
    if hv in USER_NETWORKING:
        assert not tap.exists()
    else:
        assert tap.read_text() == "vm-tap"
    if hv in VIRTIOFS_ONLY:
        virtiofs = share / "virtiofs" / "ro-store"
        assert (virtiofs / "source").read_text() == "/nix/store"
        assert (virtiofs / "socket").read_text() == f"hv-{hv}-virtiofs-ro-store.sock"


def test_freeform_nixos_settings(nix: Nix, built: dict[str, Path]) -> None:
    cfg = "nixosConfigurations.freeform.config"
    assert nix.eval_json(f"{cfg}.services.openssh") == {
        "enable": True,
        "settings": {"PasswordAuthentication": False},
    }
    keys = nix.eval_json(f"{cfg}.users.users.root.openssh.authorizedKeys.keys")
    assert keys == [SSH_KEY]
    assert nix.eval_json(f"{cfg}.users.users.root.name") == "root"
    assert nix.eval_json(f"{cfg}.networking.firewall.allowedTCPPorts") == [22]
    sw = built["freeform"] / "share" / "microvm" / "system" / "sw" / "bin"
    assert sorted(p.name for p in sw.iterdir()) == ["htop", "jq"]
    assert "quiet" in nix.eval_json(f"{cfg}.microvm.kernelParams")


def test_freeform_definitions_merge(nix: Nix) -> None:
    # The freeform guest plus a second module: lists concatenate, mkDefault loses.
    cfg = "nixosConfigurations.freeform-merged.config"
    assert nix.eval_json(f"{cfg}.networking.firewall.allowedTCPPorts") == [22, 80]
    assert nix.eval_json(f"{cfg}.services.openssh.settings.PasswordAuthentication") is True


def test_stub_packages(built: dict[str, Path]) -> None:
    for name, program in STUB_PACKAGES.items():
        out = built[f"pkg-{name}"]
        assert (out / "bin" / program).is_file(), name
        assert name in _run(out / "bin" / program)


def test_aarch64_guest_evaluates(nix: Nix) -> None:
    cfg = "nixosConfigurations.arm"
    assert nix.eval_json(f"{cfg}.pkgs.stdenv.hostPlatform.isAarch64") is True
    assert nix.eval_json(f"{cfg}.config.microvm.qemu.machine") == "virt"
    drv = nix.eval_json(f"{cfg}.config.microvm.declaredRunner.drvPath")
    assert drv.endswith("-microvm-qemu-arm.drv")


def _flatten_schema(entries: Mapping[str, Any], prefix: str, out: dict[str, str]) -> None:
    for name, entry in entries.items():
        if name == "_freeformOptions":
            continue
        path = f"{prefix}.{name}"
        if "group" in entry:
            _flatten_schema(entry["group"], path, out)
            continue
        out[path] = entry["type"]["description"]
        kind, suffix = entry["type"], ""
        while kind["name"] in {"listOf", "attrsOf", "nullOr"}:
            suffix += {"listOf": ".*", "attrsOf": ".<name>", "nullOr": ""}[kind["name"]]
            kind = kind["nested"]["elemType"]
        if kind["name"] == "submodule":
            _flatten_schema(kind.get("options", {}), path + suffix, out)


def test_options_match_upstream_schema(nix: Nix) -> None:
    expected: dict[str, str] = {}
    _flatten_schema(packaged_schema().guest, "microvm", expected)
    declared: dict[str, str] = nix.eval_json("optionTypes")
    # storeDisk: the stand-in's own (null or a package), see config.nix
    del expected["microvm.storeDisk"]
    assert {k: declared.get(k) for k in expected} == expected
    assert set(declared) - set(expected) == {"microvm.storeDisk"}


@pytest.mark.parametrize("name", sorted(BAD_GUESTS))
def test_bad_guest_fails(name: str, nix: Nix) -> None:
    _, expected = BAD_GUESTS[name]
    proc = nix.run("build", "--json", "--no-link", nix.ref(f"packages.{SYSTEM}.{name}"))
    assert proc.returncode != 0
    assert proc.stdout.strip() == ""
    # nix indents the continuation lines of a multi-line error message
    stderr = re.sub(r"\n[ \t]+", "\n", proc.stderr)
    for fragment in expected:
        assert fragment in stderr, proc.stderr


# The module system itself, evaluated directly from the stand-in's lib.
LIB_EXPR = """
let
  lib = import @LIB@;
  inherit (lib) mkOption mkEnableOption types mkIf mkDefault mkForce mkOverride mkMerge;
  decls = {
    options = {
      n = mkOption { type = types.int; default = 1; };
      l = mkOption { type = types.listOf types.str; default = [ "d" ]; };
      s = mkOption { type = types.attrsOf types.int; default = { }; };
      e = mkEnableOption "e";
      t = mkOption { type = types.lines; default = ""; };
      ei = mkOption { type = types.either types.str types.unsignedInt; default = 0; };
      sub = mkOption {
        type = types.attrsOf (types.submodule ({ name, ... }: {
          freeformType = types.attrsOf types.anything;
          options.label = mkOption { type = types.str; default = name; };
        }));
        default = { };
      };
    };
  };
  eval = modules: (lib.evalModules { modules = [ decls ] ++ modules; specialArgs.answer = 42; }).config;
in
{
  default = (eval [ ]).n;
  mkDefault = (eval [ { n = mkDefault 2; } ]).n;
  plainBeatsDefault = (eval [ { n = mkDefault 2; } { n = 3; } ]).n;
  mkForce = (eval [ { n = 3; } { n = mkForce 4; } ]).n;
  mkOverride = (eval [ { n = mkOverride 10 5; } { n = mkForce 4; } ]).n;
  lists = (eval [ { l = [ "a" ]; } { l = lib.mkBefore [ "b" ]; } { l = lib.mkAfter [ "c" ]; } ]).l;
  mkIf = (eval [ { l = mkIf false [ "x" ]; s.a = mkIf true 1; s.b = mkIf false 2; } ]).s;
  mkMerge = (eval [ { s = mkMerge [ { a = 1; } { b = 2; } ]; } ]).s;
  lines = (eval [ { t = "one"; } { t = "two"; } ]).t;
  either = (eval [ { ei = "x"; } ]).ei;
  functionModule = (eval [ ({ config, answer, ... }: { n = answer + config.s.a; s.a = 1; }) ]).n;
  moduleArgs = (eval [ { _module.args.extra = 7; } ({ extra, ... }: { n = extra; }) ]).n;
  explicit = (eval [ { config.n = 9; } ]).n;
  importsDedup = (eval [ { imports = [ ./m.nix ./m.nix ]; } { imports = [ ./m.nix ]; } ]).l;
  freeformSub = (eval [ { sub.web = { port = 80; }; sub.web.tags = [ "a" ]; } { sub.web.tags = [ "b" ]; } ]).sub;
  enable = (eval [ { e = true; } ]).e;
  conditionOnConfig = (eval [ ({ config, ... }: { s = mkIf config.e { on = 1; }; e = true; }) ]).s;
}
"""

LIB_EXPECTED = {
    "default": 1,
    "mkDefault": 2,
    "plainBeatsDefault": 3,
    "mkForce": 4,
    "mkOverride": 5,
    "lists": ["b", "a", "c"],
    "mkIf": {"a": 1},
    "mkMerge": {"a": 1, "b": 2},
    "lines": "one\ntwo",
    "either": "x",
    "functionModule": 43,
    "moduleArgs": 7,
    "explicit": 9,
    "importsDedup": ["m"],
    "freeformSub": {"web": {"label": "web", "port": 80, "tags": ["a", "b"]}},
    "enable": True,
    "conditionOnConfig": {"on": 1},
}


def _lib_expr(nix: Nix, body: str) -> str:
    lib = nix.inputs["nixpkgs"] / "lib"
    (nix.flake.parent / "m.nix").write_text('{ l = [ "m" ]; }\n', encoding="utf-8")
    return body.replace("@LIB@", str(lib)).replace("./m.nix", str(nix.flake.parent / "m.nix"))


def test_module_system_semantics(nix: Nix) -> None:
    proc = subprocess.run(
        ["nix", "eval", "--impure", "--json", "--expr", _lib_expr(nix, LIB_EXPR)],
        env=dict(nix.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == LIB_EXPECTED


LIB_ERRORS = {
    "conflicting-values": (
        "{ n = 1; } { n = 2; }",
        "The option `n' has conflicting definition values:",
    ),
    "undefined": ("{ options.u = mkOption { type = types.str; }; }", "`u' was accessed but"),
    "unsupported-attribute": (
        "{ config.n = 1; oops = 2; }",
        "has an unsupported attribute `oops'",
    ),
    "non-bool-mkIf": ('{ n = mkIf "yes" 1; }', "mkIf called with a non-Boolean condition"),
    "double-declaration": (
        "{ options.n = mkOption { type = types.int; }; }",
        "The option `n' in `<unknown-file>' is already declared in `<unknown-file>'",
    ),
    "list-element-type": (
        "{ l = [ 1 ]; }",
        "A definition for option `l.\"[definition 1-entry 1]\"' is not of type `string'",
    ),
}


@pytest.mark.parametrize("case", sorted(LIB_ERRORS))
def test_module_system_errors(case: str, nix: Nix) -> None:
    modules, expected = LIB_ERRORS[case]
    expr = f"""
    let
      lib = import @LIB@;
      inherit (lib) mkOption types mkIf;
      decls = {{
        options.n = mkOption {{ type = types.int; default = 0; }};
        options.l = mkOption {{ type = types.listOf types.str; default = [ ]; }};
      }};
      r = lib.evalModules {{ modules = [ decls {modules} ]; }};
    in
    builtins.deepSeq r.config r.config
    """
    proc = subprocess.run(
        ["nix", "eval", "--impure", "--json", "--expr", _lib_expr(nix, expr)],
        env=dict(nix.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert expected in proc.stderr, proc.stderr
