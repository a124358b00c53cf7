"""nixgen: declare NixOS micro-VM guests (microvm.nix) in Python, get a readable flake.

The public API; everything the command line does is a call a script can make::

    from nixgen import Flake, MicroVM, Interface, Share, Volume, validate, write_project

    web = MicroVM(name="web", mem=1024, interfaces=[Interface.user()], shares=[Share.ro_store()])
    flake = Flake(guests=[web])
    validate(flake)                      # raises ValidationError listing every problem
    write_project(flake, Path("my-vms"))  # flake.nix + vms/web.nix
"""

__version__ = "0.1.0"

from nixgen.errors import (
    HandEditedError,
    NixgenError,
    NixSyntaxError,
    Problem,
    ProjectError,
    RenderError,
    ValidationError,
)
from nixgen.model import (
    CloudHypervisorOptions,
    CrosvmOptions,
    Device,
    FirecrackerOptions,
    Flake,
    ForwardPort,
    Graphics,
    Input,
    Interface,
    MicroVM,
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
from nixgen.render import render_files, write_project
from nixgen.validate import check, validate

__all__ = [
    "CloudHypervisorOptions",
    "CrosvmOptions",
    "Device",
    "FirecrackerOptions",
    "Flake",
    "ForwardPort",
    "Graphics",
    "HandEditedError",
    "Input",
    "Interface",
    "MicroVM",
    "Nix",
    "NixSyntaxError",
    "NixgenError",
    "PortEnd",
    "Problem",
    "ProjectError",
    "QemuOptions",
    "RenderError",
    "Share",
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
    "render_files",
    "validate",
    "write_project",
]
