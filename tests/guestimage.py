"""A tiny real guest (kernel + initramfs) for the qemu stand-in runner.

The stand-in microvm.nix (``tests/standins/microvm``) can start a real
``qemu-system-x86_64`` when it is given a kernel and an initrd (see
``prepare_inputs(..., guest=...)`` in ``tests/standin.py``). This module makes
them from two Debian packages and caches the result:

- the kernel: Debian's ``linux-image-<abi>-amd64`` (the version the
  ``linux-image-amd64`` metapackage points at). The package ships only the
  compressed ``vmlinuz`` (a bzImage). The uncompressed ELF ``vmlinux``
  boots faster under TCG through its PVH entry point (no decompression in the
  guest: about 3 s to ``/init`` here, 4-6 s to the boot marker), so
  :func:`extract_vmlinux` takes it out of the bzImage: the boot header says
  where the compressed payload is, and the payload is the stripped ELF
  ``vmlinux`` (plus relocation data, cut off here). The ``-dbg`` package ships
  an unstripped ``vmlinux`` too, but it is an 860 MB download;
- the initramfs: ``busybox-static``, an ``/init`` script (:data:`INIT_SCRIPT`)
  and the kernel modules for virtio (mmio and pci), 9p, virtiofs, virtio-blk,
  -net, -console, -rng, -balloon, vsock and the ACPI power button, with
  their dependencies (read from each module's ``.modinfo``). In Debian's 6.1
  configuration all of these are modules, not built in. The archive is a
  ``cpio -H newc`` stream written here in Python (no ``cpio`` needed), gzipped.

The guest's ``/init`` mounts ``/proc``, ``/sys`` and ``/dev``, loads the
ACPI button modules, sets the host name from ``nixgen.host=NAME`` on the
kernel command line, prints ``NIXGEN-GUEST-BOOTED NAME`` on the console, loads
the other modules in the background (then mounts each virtiofs share named on
the kernel command line as ``nixgen.virtiofs=TAG:DIR`` and prints
``NIXGEN-SHARE TAG`` and its ``nixgen-hello`` file) and waits, with a
line-by-line shell on the serial console (prompt ``NAME# ``). It stops the machine (so that QEMU, started with
``-no-reboot``, exits) on:

- Ctrl-Alt-Del (QMP ``input-send-event``; the kernel sends init ``SIGINT``):
  prints ``NIXGEN-GUEST-REBOOT NAME`` and runs ``reboot -f``;
- the ACPI power button (QMP ``system_powerdown``; busybox ``acpid``), or
  ``SIGUSR1``/``SIGUSR2``/``SIGTERM`` to PID 1 (busybox ``halt``/``poweroff``/
  ``reboot`` in the guest shell): prints ``NIXGEN-GUEST-POWEROFF NAME`` (or
  ``…-REBOOT``) and runs ``poweroff -f`` (or ``reboot -f``).

Downloads (``apt-get download``, into ``<cache>/debs``) and the built image
(``<cache>/guest-<hash>/{vmlinux,initrd}``, the hash covering this file, so a
change to the recipe rebuilds it; images of other recipes unused for 14 days
are removed) are cached under ``$NIXGEN_TEST_CACHE`` or
``~/.cache/nixgen-tests`` (about 135 MB). The first build downloads about
72 MB and takes 10-15 s; later calls only look at the cache.
"""

from __future__ import annotations

import bz2
import contextlib
import fcntl
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BOOT_MARKER",
    "CACHE_ENV",
    "EARLY_MODULES",
    "INIT_SCRIPT",
    "MODULES",
    "POWEROFF_MARKER",
    "QEMU",
    "REBOOT_MARKER",
    "SHARE_MARKER",
    "SKIP_HINT",
    "CpioEntry",
    "GuestImage",
    "GuestImageError",
    "build_guest_image",
    "cache_dir",
    "cached_guest_image",
    "extract_vmlinux",
    "guest_image",
    "newc_archive",
    "qemu_available",
]

#: Overrides the cache folder (default ``~/.cache/nixgen-tests``).
CACHE_ENV = "NIXGEN_TEST_CACHE"
#: The emulator the stand-in qemu runner starts.
QEMU = "qemu-system-x86_64"
#: Printed on the serial console, followed by a space and the host name.
BOOT_MARKER = "NIXGEN-GUEST-BOOTED"
REBOOT_MARKER = "NIXGEN-GUEST-REBOOT"
POWEROFF_MARKER = "NIXGEN-GUEST-POWEROFF"
#: Printed for each virtiofs share the guest mounted: ``NIXGEN-SHARE TAG CONTENT``,
#: CONTENT being the share's ``nixgen-hello`` file.
SHARE_MARKER = "NIXGEN-SHARE"

SKIP_HINT = (
    "needs qemu (apt-get install qemu-system-x86), apt-get and dpkg-deb, Debian's "
    "package lists (apt-get update) and Debian's archive reachable for the first "
    f"build (then cached under ${CACHE_ENV} or ~/.cache/nixgen-tests)"
)

#: Metapackage whose dependency names the kernel package to use.
KERNEL_METAPACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
# Debian 12: linux-image-6.1.0-41-amd64; Debian 13: linux-image-6.12.57+deb13-amd64
_KERNEL_PACKAGE = re.compile(r"^linux-image-(\d+)\.(\d+)\.(\d+)(?:-(\d+)|\+deb(\d+))-amd64$")

#: Modules the guest loads before its boot marker (with their dependencies): the
#: ACPI power button, so that QMP ``system_powerdown`` works once it is booted.
EARLY_MODULES = ("button", "evdev")
#: Modules the guest loads in the background after its boot marker (about 1.5 s
#: of insmod under TCG), by module name.
MODULES = (
    "virtio_mmio",
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "virtio_balloon",
    "virtio_rng",
    "9pnet_virtio",
    "9p",
    "virtiofs",
    "vmw_vsock_virtio_transport",
)

#: The guest's /init (busybox ash as PID 1).
INIT_SCRIPT = f"""#!/bin/busybox sh
# nixgen test guest: prints a boot marker, then waits until it is told to stop.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts

load_modules() {{
  while read -r module; do
    insmod "$module" || echo "nixgen-init: could not load $module"
  done < "$1"
}}
# The ACPI power button first; the virtio drivers are loaded after the marker.
load_modules /etc/nixgen/modules-early

host=nixgen-guest
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    nixgen.host=*) host="${{arg#nixgen.host=}}" ;;
  esac
done
hostname "$host"

stop() {{
  echo "$1 $host"
  sync
  if [ "$1" = {REBOOT_MARKER} ]; then reboot -f; else poweroff -f; fi
}}
# Ctrl-Alt-Del: with kernel.ctrl-alt-del = 0 the kernel sends init SIGINT.
echo 0 > /proc/sys/kernel/ctrl-alt-del
trap 'stop {REBOOT_MARKER}' INT TERM
trap 'stop {POWEROFF_MARKER}' USR1 USR2
# The ACPI power button (QMP system_powerdown) runs /etc/acpi/PWRF/00000080.
acpid -c /etc/acpi -l /dev/null

dmesg -n 1
echo "{BOOT_MARKER} $host"
# virtiofs shares named on the kernel command line (nixgen.virtiofs=TAG:MOUNTPOINT),
# mounted once their drivers are loaded; each says what its nixgen-hello file holds.
mount_shares() {{
  for arg in $(cat /proc/cmdline); do
    case "$arg" in
      nixgen.virtiofs=*)
        spec="${{arg#nixgen.virtiofs=}}"
        tag="${{spec%%:*}}"
        dir="${{spec#*:}}"
        mkdir -p "$dir"
        if mount -t virtiofs "$tag" "$dir"; then
          echo "{SHARE_MARKER} $tag $(cat "$dir/nixgen-hello" 2>/dev/null)"
        else
          echo "{SHARE_MARKER}-FAILED $tag"
        fi
        ;;
    esac
  done
}}
(load_modules /etc/nixgen/modules >/dev/null 2>&1; mount_shares) &

# A line-by-line shell on the serial console (no line editing, so no escape
# sequences on the console), started again whenever it exits.
(
  while :; do
    setsid cttyhack sh -c 'while printf "%s# " "$(hostname)"; IFS= read -r line; do eval "$line"; done'
    sleep 1
  done
) </dev/console >/dev/console 2>&1 &

while :; do
  sleep 3600 &
  wait $!
done
"""

_ACPI_POWER_BUTTON = "#!/bin/sh\nkill -USR2 1\n"


class GuestImageError(RuntimeError):
    """The guest image cannot be built here (the message says why)."""


@dataclass(frozen=True)
class GuestImage:
    """A bootable guest: ``-kernel`` (ELF vmlinux with a PVH entry) and ``-initrd``."""

    kernel: Path
    initrd: Path


def qemu_available() -> bool:
    """Whether ``qemu-system-x86_64`` is on PATH."""
    return shutil.which(QEMU) is not None


def cache_dir() -> Path:
    """``$NIXGEN_TEST_CACHE``, else ``$XDG_CACHE_HOME/nixgen-tests`` (``~/.cache``)."""
    from_env = os.environ.get(CACHE_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return (base / "nixgen-tests").resolve()


def _recipe_key() -> str:
    """Hash of this file: any change to the recipe builds a new image."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _image_dir(cache: Path) -> Path:
    return cache / f"guest-{_recipe_key()}"


def cached_guest_image(cache: Path | None = None) -> GuestImage | None:
    """The image already built for this recipe, or None. Downloads nothing."""
    folder = _image_dir(cache if cache is not None else cache_dir())
    image = GuestImage(kernel=folder / "vmlinux", initrd=folder / "initrd")
    if image.kernel.is_file() and image.initrd.is_file():
        with contextlib.suppress(OSError):
            os.utime(folder)  # last use, for _prune
        return image
    return None


def _prune(cache: Path, keep: Path, days: float = 14) -> None:
    """Remove the images of other recipes that no one has used for *days*."""
    limit = time.time() - days * 86400
    for folder in cache.glob("guest-*"):
        with contextlib.suppress(OSError):
            if folder != keep and folder.stat().st_mtime < limit:
                shutil.rmtree(folder)


_skip_reason: str | None = None


def guest_image() -> GuestImage:
    """The cached guest image, built first if needed; skips the test when it can't be.

    Skips (``pytest.skip``) when qemu is missing or the image can't be built
    (no ``apt-get``/``dpkg-deb``, no package lists, Debian's archive
    unreachable). A failure is remembered, so later tests skip at once.
    """
    import pytest

    global _skip_reason
    if not qemu_available():
        pytest.skip(f"{QEMU} not found: {SKIP_HINT}")
    if _skip_reason is not None:
        pytest.skip(_skip_reason)
    try:
        return build_guest_image()
    except GuestImageError as err:
        _skip_reason = f"no guest image: {err} ({SKIP_HINT})"
        pytest.skip(_skip_reason)


def build_guest_image(cache: Path | None = None) -> GuestImage:
    """Return the cached image, building it (and downloading the packages) if needed.

    Safe to call from several processes at once (a lock file serialises the
    builds). Raises GuestImageError when it can't be built here.
    """
    cache = cache if cache is not None else cache_dir()
    found = cached_guest_image(cache)
    if found is not None:
        return found
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise GuestImageError(f"{tool} not found (a Debian-based system is needed)")
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GuestImageError(f"cannot create the cache folder {cache}: {err}") from err
    with _locked(cache / ".lock"):
        found = cached_guest_image(cache)
        if found is not None:
            return found
        debs = cache / "debs"
        debs.mkdir(exist_ok=True)
        kernel_deb = _download(_kernel_package(), debs)
        busybox_deb = _download(BUSYBOX_PACKAGE, debs)
        with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as scratch:
            work = Path(scratch)
            out = work / "out"
            out.mkdir()
            _build(kernel_deb, busybox_deb, work, out)
            (out / "packages").write_text(f"{kernel_deb.name}\n{busybox_deb.name}\n")
            out.rename(_image_dir(cache))
        _prune(cache, keep=_image_dir(cache))
        image = cached_guest_image(cache)
        assert image is not None
        return image


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(args: list[str], *, cwd: Path | None = None, timeout: float = 120) -> str:
    try:
        proc = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise GuestImageError(f"{' '.join(args)}: {err}") from err
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        errors = [line for line in lines if not line.startswith("W:")] or lines  # apt warnings
        raise GuestImageError(f"{' '.join(args)} failed: {' / '.join(errors[-3:])}")
    return proc.stdout


def _version_key(name: str) -> tuple[int, ...]:
    match = _KERNEL_PACKAGE.match(name)
    return tuple(int(part or 0) for part in match.groups()) if match else ()


def _kernel_package() -> str:
    """``linux-image-<abi>-amd64``: the metapackage's choice, else the newest 6.1 one."""
    try:
        text = _run(["apt-cache", "depends", "--important", KERNEL_METAPACKAGE], timeout=60)
    except GuestImageError:
        text = ""
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line]
    names = [name for name in names if _KERNEL_PACKAGE.match(name)]
    if not names:
        listed = _run(["apt-cache", "pkgnames", "linux-image-6.1."], timeout=60).split()
        names = [name for name in listed if _KERNEL_PACKAGE.match(name)]
    if not names:
        raise GuestImageError(
            f"no linux-image-*-amd64 package in the package lists (run apt-get update; "
            f"apt-cache depends {KERNEL_METAPACKAGE} names none)"
        )
    return max(names, key=_version_key)


def _download(package: str, debs: Path) -> Path:
    """``<debs>/<package>_*.deb``, downloaded with ``apt-get download`` unless present."""
    present = sorted(debs.glob(f"{package}_*.deb"))
    if present:
        return present[-1]
    with tempfile.TemporaryDirectory(prefix="download-", dir=debs) as scratch:
        _run(["apt-get", "download", "-q", package], cwd=Path(scratch), timeout=600)
        got = sorted(Path(scratch).glob(f"{package}_*.deb"))
        if not got:
            raise GuestImageError(f"apt-get download {package} left no .deb")
        target = debs / got[-1].name
        got[-1].rename(target)
    if package.startswith("linux-image-"):  # drop kernels of older ABIs
        for old in debs.glob("linux-image-*.deb"):
            if old != target:
                old.unlink()
    return target


def _build(kernel_deb: Path, busybox_deb: Path, work: Path, out: Path) -> None:
    kernel_root = work / "kernel"
    busybox_root = work / "busybox"
    _run(["dpkg-deb", "-x", str(kernel_deb), str(kernel_root)], timeout=300)
    _run(["dpkg-deb", "-x", str(busybox_deb), str(busybox_root)], timeout=60)
    vmlinuz = sorted((kernel_root / "boot").glob("vmlinuz-*"))
    if len(vmlinuz) != 1:
        raise GuestImageError(f"{kernel_deb.name}: expected one boot/vmlinuz-*, found {vmlinuz}")
    release = vmlinuz[0].name.removeprefix("vmlinuz-")
    (out / "vmlinux").write_bytes(extract_vmlinux(vmlinuz[0].read_bytes()))
    busybox = busybox_root / "bin" / "busybox"
    if not busybox.is_file():
        raise GuestImageError(f"{busybox_deb.name} has no bin/busybox")
    modules_root = kernel_root / "lib" / "modules" / release
    early = _module_closure(modules_root, EARLY_MODULES)
    late = [path for path in _module_closure(modules_root, MODULES) if path not in early]
    entries = _initramfs_entries(busybox, modules_root, {"modules-early": early, "modules": late})
    initramfs = gzip.compress(newc_archive(entries), 6, mtime=0)
    (out / "initrd").write_bytes(pad_initrd(initramfs))


# Under ``-M microvm`` QEMU loads the initrd at (top of RAM - 1 - size) rounded
# down to a page: unlike the ``pc`` machine it keeps no room for ACPI, and
# SeaBIOS writes the ACPI tables into that same top page. So the initrd's end
# leaves 4096 - size % 4096 bytes free at the top; when the tables need more,
# the initrd overwrites them and the kernel hangs checksumming a garbage table
# right after "ACPI: Core revision". QEMU 10.0's tables with pcie=on (DSDT,
# FACP, APIC, XSDT: about 3.5 kB for 1-4 vCPUs) overflowed the 860 bytes the
# unpadded initrd happened to leave; QEMU 7.2's smaller ones fitted. Trailing
# zeros (the kernel skips zeros after an initramfs archive) round the size up
# to a whole page, which leaves the whole top page to the tables.
INITRD_PAGE = 4096


def pad_initrd(initramfs: bytes) -> bytes:
    """*initramfs* padded with zeros to whole pages, so QEMU leaves the top page to ACPI."""
    return initramfs + bytes(-len(initramfs) % INITRD_PAGE)


# ------------------------------------------------------------------ the kernel


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF ``vmlinux`` inside an x86 bzImage (boot protocol 2.08 or later).

    Reads the compressed payload's place from the setup header
    (``payload_offset``/``payload_length``), decompresses it (xz, gzip,
    bzip2 or lzma), cuts off what follows the ELF image (relocation data) and
    checks that the kernel has a PVH entry point (a Xen ``PHYS32_ENTRY`` note),
    which QEMU needs to boot an ELF kernel.
    """
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        raise GuestImageError("not an x86 bzImage (no HdrS signature)")
    (protocol,) = struct.unpack_from("<H", bzimage, 0x206)
    if protocol < 0x208:
        raise GuestImageError(f"boot protocol {protocol:#x} has no payload fields")
    setup_sects = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    elf = _decompress(bzimage[start : start + payload_length])
    if elf[:5] != b"\x7fELF\x02":
        raise GuestImageError("the bzImage payload is not a 64-bit ELF vmlinux")
    elf = elf[: _elf_end(elf)]
    if not _has_pvh_note(elf):
        raise GuestImageError("the kernel has no PVH entry point (CONFIG_PVH)")
    return elf


def _decompress(payload: bytes) -> bytes:
    if payload.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    if payload.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31).decompress(payload)
    if payload.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(payload)
    if payload.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(payload)
    raise GuestImageError(
        f"kernel payload compressed with an unsupported method (magic {payload[:4].hex()})"
    )


def _elf_headers(elf: bytes) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int, int]]]:
    """(program headers as (type, offset, filesz), sections as (name, type, offset, size))."""
    (phoff, shoff) = struct.unpack_from("<QQ", elf, 0x20)
    (phentsize, phnum, shentsize, shnum) = struct.unpack_from("<HHHH", elf, 0x36)
    programs = []
    for i in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize
        )
        programs.append((p_type, p_offset, p_filesz))
    sections = []
    for i in range(shnum):
        sh_name, sh_type, _flags, _addr, sh_offset, sh_size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + i * shentsize
        )
        sections.append((sh_name, sh_type, sh_offset, sh_size))
    return programs, sections


def _elf_end(elf: bytes) -> int:
    (phoff, shoff) = struct.unpack_from("<QQ", elf, 0x20)
    (phentsize, phnum, shentsize, shnum) = struct.unpack_from("<HHHH", elf, 0x36)
    programs, sections = _elf_headers(elf)
    ends: list[int] = [phoff + phentsize * phnum, shoff + shentsize * shnum]
    ends += [offset + size for _type, offset, size in programs]
    ends += [offset + size for _name, kind, offset, size in sections if kind != 8]  # 8: NOBITS
    return max(ends)


def _has_pvh_note(elf: bytes) -> bool:
    programs, _sections = _elf_headers(elf)
    for p_type, offset, size in programs:
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = offset, offset + size
        while pos + 12 <= end:
            namesz, descsz, note_type = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and note_type == 18:  # XEN_ELFNOTE_PHYS32_ENTRY
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


# ------------------------------------------------------------------ the modules


def _module_name(path: Path) -> str:
    return path.name.removesuffix(".ko").replace("-", "_")


def _modinfo_depends(path: Path) -> list[str]:
    """The ``depends=`` entry of a module's ``.modinfo`` section."""
    elf = path.read_bytes()
    (shstrndx,) = struct.unpack_from("<H", elf, 0x3E)
    _programs, sections = _elf_headers(elf)
    names_offset = sections[shstrndx][2]
    for name, _kind, offset, size in sections:
        end = elf.index(b"\0", names_offset + name)
        if elf[names_offset + name : end] != b".modinfo":
            continue
        for field in elf[offset : offset + size].split(b"\0"):
            if field.startswith(b"depends="):
                value = field.removeprefix(b"depends=").decode()
                return [dep.replace("-", "_") for dep in value.split(",") if dep]
        return []
    return []


def _module_closure(modules_root: Path, wanted: Iterable[str]) -> list[Path]:
    """The wanted modules and their dependencies, each after what it needs.

    A wanted module that is built in (in ``modules.builtin``) is left out.
    """
    by_name = {_module_name(path): path for path in modules_root.rglob("*.ko")}
    builtin_file = modules_root / "modules.builtin"
    builtin = (
        {_module_name(Path(line)) for line in builtin_file.read_text().split()}
        if builtin_file.is_file()
        else set()
    )
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        path = by_name.get(name)
        if path is None:
            if name in builtin:
                return
            raise GuestImageError(f"kernel module {name} not found under {modules_root}")
        for dep in _modinfo_depends(path):
            visit(dep)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


# ------------------------------------------------------------------ the initramfs


@dataclass(frozen=True)
class CpioEntry:
    name: str  # without a leading slash
    mode: int  # with the file type bits
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _initramfs_entries(
    busybox: Path, modules_root: Path, module_lists: dict[str, list[Path]]
) -> list[CpioEntry]:
    """The initramfs: folders, device nodes, busybox, /init, the modules and their load lists."""
    release = modules_root.name
    folders = [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "root",
        "mnt",
        "etc",
        "etc/nixgen",
        "etc/acpi",
        "etc/acpi/PWRF",
        "lib",
        "lib/modules",
        f"lib/modules/{release}",
    ]
    entries = [CpioEntry(name, 0o040755) for name in folders]
    entries += [
        CpioEntry("dev/console", 0o020600, rdev=(5, 1)),
        CpioEntry("dev/null", 0o020666, rdev=(1, 3)),
        CpioEntry("bin/busybox", 0o100755, busybox.read_bytes()),
        CpioEntry("bin/sh", 0o120777, b"busybox"),
        CpioEntry("init", 0o100755, INIT_SCRIPT.encode()),
        CpioEntry("etc/acpi/PWRF/00000080", 0o100755, _ACPI_POWER_BUTTON.encode()),
    ]
    for list_name, modules in module_lists.items():
        paths = [f"lib/modules/{release}/{path.name}" for path in modules]
        listing = "".join(f"/{path}\n" for path in paths)
        entries.append(CpioEntry(f"etc/nixgen/{list_name}", 0o100644, listing.encode()))
        entries += [
            CpioEntry(name, 0o100644, path.read_bytes())
            for name, path in zip(paths, modules, strict=True)
        ]
    return entries


def newc_archive(entries: Iterable[CpioEntry]) -> bytes:
    """A ``cpio -H newc`` archive of *entries* (owner root, mtime 0), with its trailer."""
    out = io.BytesIO()

    def pad() -> None:
        out.write(b"\0" * (-out.tell() % 4))

    def member(ino: int, name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> None:
        encoded = name.encode() + b"\0"
        nlink = 2 if mode & 0o170000 == 0o040000 else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, *rdev, len(encoded), 0]
        out.write(b"070701" + b"".join(b"%08X" % value for value in fields))
        out.write(encoded)
        pad()
        out.write(data)
        pad()

    for ino, entry in enumerate(entries, start=1):
        member(ino, entry.name, entry.mode, entry.data, entry.rdev)
    member(0, "TRAILER!!!", 0, b"", (0, 0))
    return out.getvalue()
