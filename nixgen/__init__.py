"""nixgen: declare NixOS micro-VM guests (microvm.nix) in Python, get a readable flake.

The public API; everything the command line does is a call a script can make::

    from nixgen import Flake, MicroVM, Interface, Share, Volume, validate, write_project

    web = MicroVM(name="web", mem=1024, interfaces=[Interface.user()], shares=[Share.ro_store()])
    flake = Flake(guests=[web])
    validate(flake)                      # raises ValidationError listing every problem
    write_project(flake, Path("my-vms"))  # flake.nix + vms/web.nix

    existing = FlakeFile.load("my-vms")  # any flake: guests read statically, edited in place
    existing["web"] = existing["web"].evolve(mem=2048)
    existing.save()

    lan = Network.bridged("lan", ["web"], ipv4="10.0.0.0/24", nat=True)
    host = Host(name="vmhost", vms=["web"], networks=[lan], nixos_configuration=True)
    flake = flake.evolve(hosts=[host])    # + hosts/vmhost.nix, nixosModules.vmhost
    write_project(flake, Path("my-vms"))
    Fleet(flake, "my-vms").deploy()       # nix build, nix copy, nixos-rebuild switch
"""

__version__ = "0.1.0"

from nixgen.deploy import DeployOptions, DeployReport, Fleet, HostReport
from nixgen.errors import (
    BootError,
    BuildError,
    CommandError,
    FileError,
    FlakeEditError,
    FlakesDisabledError,
    GuestError,
    GuestEvalError,
    GuestLockedError,
    GuestNotRunningError,
    GuestRunningError,
    HandEditedError,
    KvmInternalError,
    NixBuildError,
    NixCommandError,
    NixEditError,
    NixEmitError,
    NixEvalError,
    NixgenError,
    NixInputError,
    NixNotFoundError,
    NixOptionError,
    NixPathError,
    NixSyntaxError,
    NixTimeoutError,
    NixVersionError,
    NoRunnerError,
    OptionError,
    Problem,
    ProjectError,
    ProjectLockedError,
    QMPCommandError,
    QMPConnectionError,
    QMPError,
    RenderError,
    StartError,
    StopError,
    UnsupportedError,
    UnsupportedSyntaxError,
    ValidationError,
)
from nixgen.flakefile import FlakeFile, GuestView
from nixgen.model import (
    CloudHypervisorOptions,
    CrosvmOptions,
    Device,
    FirecrackerOptions,
    Flake,
    ForwardPort,
    Graphics,
    Host,
    HostVM,
    Input,
    Interface,
    MicroVM,
    Network,
    Nix,
    PortEnd,
    QemuOptions,
    Share,
    User,
    VfkitOptions,
    VirtiofsdOptions,
    Volume,
    Vsock,
)
from nixgen.model.convert import (
    dumps_json,
    dumps_toml,
    flake_from_dict,
    flake_to_dict,
    load_flake_file,
    loads_flake,
)
from nixgen.network import Attachment, NetworkPlan, plan_networks
from nixgen.render import render_files, write_project
from nixgen.validate import check, validate

__all__ = [
    "Attachment",
    "BootError",
    "BuildError",
    "CloudHypervisorOptions",
    "CommandError",
    "CrosvmOptions",
    "DeployOptions",
    "DeployReport",
    "Device",
    "FileError",
    "FirecrackerOptions",
    "Flake",
    "FlakeEditError",
    "FlakeFile",
    "FlakesDisabledError",
    "Fleet",
    "ForwardPort",
    "Graphics",
    "GuestError",
    "GuestEvalError",
    "GuestLockedError",
    "GuestNotRunningError",
    "GuestRunningError",
    "GuestView",
    "HandEditedError",
    "Host",
    "HostReport",
    "HostVM",
    "Input",
    "Interface",
    "KvmInternalError",
    "MicroVM",
    "Network",
    "NetworkPlan",
    "Nix",
    "NixBuildError",
    "NixCommandError",
    "NixEditError",
    "NixEmitError",
    "NixEvalError",
    "NixInputError",
    "NixNotFoundError",
    "NixOptionError",
    "NixPathError",
    "NixSyntaxError",
    "NixTimeoutError",
    "NixVersionError",
    "NixgenError",
    "NoRunnerError",
    "OptionError",
    "PortEnd",
    "Problem",
    "ProjectError",
    "ProjectLockedError",
    "QMPCommandError",
    "QMPConnectionError",
    "QMPError",
    "QemuOptions",
    "RenderError",
    "Share",
    "StartError",
    "StopError",
    "UnsupportedError",
    "UnsupportedSyntaxError",
    "User",
    "ValidationError",
    "VfkitOptions",
    "VirtiofsdOptions",
    "Volume",
    "Vsock",
    "__version__",
    "check",
    "dumps_json",
    "dumps_toml",
    "flake_from_dict",
    "flake_to_dict",
    "load_flake_file",
    "loads_flake",
    "plan_networks",
    "render_files",
    "validate",
    "write_project",
]
