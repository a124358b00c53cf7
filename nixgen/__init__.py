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

from __future__ import annotations

from nixgen._lazy import export_lazily

# typing costs ~4 ms to import and nothing here needs it at run time (mypy
# reads a TYPE_CHECKING of one's own as typing's): the command line starts fast.
TYPE_CHECKING = False

# Nothing is imported until a name is asked for (``nixgen.Flake``), so that
# ``import nixgen.model`` or the command line does not pay for the runtime,
# deploy, tree-sitter or Jinja.  Type checkers see the real imports below.
if TYPE_CHECKING:
    from nixgen._version import __version__
    from nixgen.build import (
        BuildError,
        GuestEvalError,
    )
    from nixgen.deploy import DeployOptions, DeployReport, Fleet, HostReport
    from nixgen.errors import (
        FileError,
        GraphError,
        NixEmitError,
        NixgenError,
        OptionError,
        Problem,
        ProjectError,
        ValidationError,
    )
    from nixgen.flake import FlakeFile, GuestView
    from nixgen.flake.errors import (
        EvaluationError,
        FlakeEditError,
        HandEditedError,
        ProjectLockedError,
        RenderError,
    )
    from nixgen.hostcheck import HostEvalError
    from nixgen.lockschema import LockSchemaError
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
    from nixgen.nix.errors import (
        NixEditError,
        NixPathError,
        NixSyntaxError,
        UnsupportedSyntaxError,
    )
    from nixgen.nixcmd.errors import (
        FlakesDisabledError,
        NixBuildError,
        NixCommandError,
        NixEvalError,
        NixInputError,
        NixNotFoundError,
        NixOptionError,
        NixTimeoutError,
        NixVersionError,
    )
    from nixgen.process.errors import (
        CommandError,
        CommandNotFoundError,
        CommandTimeoutError,
    )
    from nixgen.render import render_files, write_project
    from nixgen.runtime.errors import (
        BootError,
        GuestError,
        GuestLockedError,
        GuestNotRunningError,
        GuestRunningError,
        KvmInternalError,
        NoRunnerError,
        QMPCommandError,
        QMPConnectionError,
        QMPError,
        StartError,
        StopError,
        UnsupportedError,
    )
    from nixgen.validate import check, validate

#: Where each public name lives.
_EXPORTS = {
    "__version__": "nixgen._version",
    "Attachment": "nixgen.network",
    "BootError": "nixgen.runtime.errors",
    "BuildError": "nixgen.build",
    "CloudHypervisorOptions": "nixgen.model",
    "CommandError": "nixgen.process.errors",
    "CommandNotFoundError": "nixgen.process.errors",
    "CommandTimeoutError": "nixgen.process.errors",
    "CrosvmOptions": "nixgen.model",
    "DeployOptions": "nixgen.deploy",
    "DeployReport": "nixgen.deploy",
    "Device": "nixgen.model",
    "FirecrackerOptions": "nixgen.model",
    "Flake": "nixgen.model",
    "EvaluationError": "nixgen.flake.errors",
    "FileError": "nixgen.errors",
    "FlakeEditError": "nixgen.flake.errors",
    "FlakeFile": "nixgen.flake",
    "FlakesDisabledError": "nixgen.nixcmd.errors",
    "Fleet": "nixgen.deploy",
    "ForwardPort": "nixgen.model",
    "GraphError": "nixgen.errors",
    "Graphics": "nixgen.model",
    "GuestError": "nixgen.runtime.errors",
    "GuestEvalError": "nixgen.build",
    "GuestLockedError": "nixgen.runtime.errors",
    "GuestNotRunningError": "nixgen.runtime.errors",
    "GuestRunningError": "nixgen.runtime.errors",
    "GuestView": "nixgen.flake",
    "HandEditedError": "nixgen.flake.errors",
    "Host": "nixgen.model",
    "HostEvalError": "nixgen.hostcheck",
    "HostReport": "nixgen.deploy",
    "HostVM": "nixgen.model",
    "Input": "nixgen.model",
    "Interface": "nixgen.model",
    "KvmInternalError": "nixgen.runtime.errors",
    "LockSchemaError": "nixgen.lockschema",
    "MicroVM": "nixgen.model",
    "Network": "nixgen.model",
    "NetworkPlan": "nixgen.network",
    "Nix": "nixgen.model",
    "NixBuildError": "nixgen.nixcmd.errors",
    "NixCommandError": "nixgen.nixcmd.errors",
    "NixEditError": "nixgen.nix.errors",
    "NixEmitError": "nixgen.errors",
    "NixEvalError": "nixgen.nixcmd.errors",
    "NixInputError": "nixgen.nixcmd.errors",
    "NixNotFoundError": "nixgen.nixcmd.errors",
    "NixOptionError": "nixgen.nixcmd.errors",
    "NixPathError": "nixgen.nix.errors",
    "NixSyntaxError": "nixgen.nix.errors",
    "NixTimeoutError": "nixgen.nixcmd.errors",
    "NixVersionError": "nixgen.nixcmd.errors",
    "NixgenError": "nixgen.errors",
    "NoRunnerError": "nixgen.runtime.errors",
    "OptionError": "nixgen.errors",
    "PortEnd": "nixgen.model",
    "Problem": "nixgen.errors",
    "ProjectError": "nixgen.errors",
    "ProjectLockedError": "nixgen.flake.errors",
    "QMPCommandError": "nixgen.runtime.errors",
    "QMPConnectionError": "nixgen.runtime.errors",
    "QMPError": "nixgen.runtime.errors",
    "QemuOptions": "nixgen.model",
    "RenderError": "nixgen.flake.errors",
    "Share": "nixgen.model",
    "StartError": "nixgen.runtime.errors",
    "StopError": "nixgen.runtime.errors",
    "UnsupportedError": "nixgen.runtime.errors",
    "UnsupportedSyntaxError": "nixgen.nix.errors",
    "User": "nixgen.model",
    "ValidationError": "nixgen.errors",
    "VfkitOptions": "nixgen.model",
    "VirtiofsdOptions": "nixgen.model",
    "Volume": "nixgen.model",
    "Vsock": "nixgen.model",
    "check": "nixgen.validate",
    "dumps_json": "nixgen.model.convert",
    "dumps_toml": "nixgen.model.convert",
    "flake_from_dict": "nixgen.model.convert",
    "flake_to_dict": "nixgen.model.convert",
    "load_flake_file": "nixgen.model.convert",
    "loads_flake": "nixgen.model.convert",
    "plan_networks": "nixgen.network",
    "render_files": "nixgen.render",
    "validate": "nixgen.validate",
    "write_project": "nixgen.render",
}

__all__ = [
    "Attachment",
    "BootError",
    "BuildError",
    "CloudHypervisorOptions",
    "CommandError",
    "CommandNotFoundError",
    "CommandTimeoutError",
    "CrosvmOptions",
    "DeployOptions",
    "DeployReport",
    "Device",
    "EvaluationError",
    "FileError",
    "FirecrackerOptions",
    "Flake",
    "FlakeEditError",
    "FlakeFile",
    "FlakesDisabledError",
    "Fleet",
    "ForwardPort",
    "GraphError",
    "Graphics",
    "GuestError",
    "GuestEvalError",
    "GuestLockedError",
    "GuestNotRunningError",
    "GuestRunningError",
    "GuestView",
    "HandEditedError",
    "Host",
    "HostEvalError",
    "HostReport",
    "HostVM",
    "Input",
    "Interface",
    "KvmInternalError",
    "LockSchemaError",
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


export_lazily(__name__, _EXPORTS)
