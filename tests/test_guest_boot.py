"""A real guest: the stand-in qemu runner boots the tiny test guest (tests/guestimage.py).

The guest is built through ``nixgen.build.build`` against the stand-in inputs
with the guest image in them (``prepare_inputs(..., guest=guest_image())``);
``bin/microvm-run`` then starts a real ``qemu-system-x86_64`` (TCG). Skipped
when nix, qemu or the guest image (Debian's kernel and busybox packages) are
not to be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nixgen import Flake, MicroVM, write_project
from nixgen.build import BuildResult, build
from nixgen.nixcmd import NixRunner
from nixgen.project import Project
from tests.guestimage import (
    BOOT_MARKER,
    POWEROFF_MARKER,
    REBOOT_MARKER,
    CpioEntry,
    GuestImage,
    GuestImageError,
    extract_vmlinux,
    guest_image,
    newc_archive,
    pad_initrd,
)
from tests.standin import (
    NIX_SKIP_REASON,
    nix_available,
    offline_nix_env,
    prepare_inputs,
)

BOOT_TIMEOUT = 60.0
EXIT_TIMEOUT = 20.0


# ----------------------------------------------------------------- without qemu


def _read_newc(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """(name, mode, data, rdev) of each member, trailer excluded."""
    members: list[tuple[str, int, bytes, tuple[int, int]]] = []
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        pos += 110
        name = data[pos : pos + namesize - 1].decode()
        pos += namesize + (-(110 + namesize) % 4)
        body = data[pos : pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            assert pos == len(data)
            return members
        members.append((name, mode, body, rdev))


def test_newc_archive_round_trips() -> None:
    entries = [
        CpioEntry("bin", 0o040755),
        CpioEntry("bin/tool", 0o100755, b"#!/bin/sh\necho hi\n"),
        CpioEntry("bin/sh", 0o120777, b"tool"),
        CpioEntry("dev/console", 0o020600, rdev=(5, 1)),
        CpioEntry("odd", 0o100644, b"x" * 5),
    ]
    archive = newc_archive(entries)
    assert len(archive) % 4 == 0
    assert _read_newc(archive) == [(e.name, e.mode, e.data, e.rdev) for e in entries]


@pytest.mark.parametrize("size", [1, 3236, 4095, 4096, 4097, 1617060])
def test_padded_initrd_leaves_the_top_page_to_acpi(size: int) -> None:
    import gzip
    import random

    initramfs = gzip.compress(random.Random(size).randbytes(size), mtime=0)
    padded = pad_initrd(initramfs)
    assert padded.startswith(initramfs)
    assert set(padded[len(initramfs) :]) <= {0}
    assert gzip.decompress(padded) == gzip.decompress(initramfs)
    # Where QEMU's microvm loads it: below top - 1, rounded down to a page.
    top = 256 << 20
    start = (top - 1 - len(padded)) & ~4095
    assert top - (start + len(padded)) == 4096


def _elf_with_pvh_note() -> bytes:
    """A minimal 64-bit ELF with one PT_NOTE program header holding a Xen PHYS32_ENTRY note."""
    note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", 0x1000000)
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    struct.pack_into("<QQ", header, 0x20, 64, 0)  # e_phoff, e_shoff
    struct.pack_into("<HHHH", header, 0x36, 56, 1, 64, 0)  # phentsize, phnum, shentsize, shnum
    program = struct.pack("<IIQQQQQQ", 4, 4, 64 + 56, 0, 0, len(note), len(note), 4)
    return bytes(header) + program + note


def _bzimage(payload: bytes) -> bytes:
    setup_sects = 1
    image = bytearray((setup_sects + 1) * 512)
    image[0x1F1] = setup_sects
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x206, 0x20F)
    struct.pack_into("<II", image, 0x248, 16, len(payload))
    return bytes(image) + b"\0" * 16 + payload + b"\0" * 32


def test_extract_vmlinux_from_a_bzimage() -> None:
    import lzma

    elf = _elf_with_pvh_note()
    # What follows the ELF image (relocation data in a real kernel) is cut off.
    payload = lzma.compress(elf + b"RELOCS", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    assert extract_vmlinux(_bzimage(payload)) == elf
    with pytest.raises(GuestImageError, match="bzImage"):
        extract_vmlinux(b"\0" * 4096)
    no_note = elf.replace(b"Xen\0", b"Lin\0")
    with pytest.raises(GuestImageError, match="PVH"):
        extract_vmlinux(_bzimage(lzma.compress(no_note, format=lzma.FORMAT_XZ)))


# ----------------------------------------------------------------- with qemu

_NEEDS_NIX = [
    pytest.mark.nix,
    pytest.mark.skipif(not nix_available(), reason=NIX_SKIP_REASON),
]


@pytest.fixture(scope="module")
def image() -> GuestImage:
    pytest.importorskip("qemu.qmp", reason="the QMP client library: pip install qemu.qmp")
    return guest_image()  # skips when qemu or the image can't be had


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory, image: GuestImage) -> BuildResult:
    """The guest ``boot`` (qemu, 1 vCPU, 384 MiB), built with the real guest image."""
    base = tmp_path_factory.mktemp("guest-boot")
    inputs = prepare_inputs(base / "inputs", guest=image)
    nix = NixRunner(
        env=offline_nix_env(base),
        override_inputs={name: f"path:{path}" for name, path in inputs.items()},
    )
    folder = base / "project"
    flake = Flake(guests=[MicroVM(name="boot", vcpu=1, mem=384)])
    write_project(flake, folder)
    Project(folder).save(flake)
    return build(folder, nix=nix, gc_roots=False)["boot"]


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short working folder: QMP socket paths must stay under 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="nixgen-vm-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Console:
    """Collects a running guest's serial console (qemu's stdout) in a thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._data = bytearray()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 4096):
            with self._changed:
                self._data += chunk
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return self._data.decode(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text.splitlines()[-lines:])

    def wait_for(self, needle: str, timeout: float) -> float:
        """Seconds until *needle* appeared; fails with the console tail otherwise."""
        start = time.monotonic()
        deadline = start + timeout
        with self._changed:
            while needle.encode() not in self._data:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {needle!r} after {timeout:g} s; console:\n{self.tail()}")
                if self.proc.poll() is not None and not self._thread.is_alive():
                    pytest.fail(
                        f"qemu exited ({self.proc.returncode}) before {needle!r}; "
                        f"console:\n{self.tail()}"
                    )
                self._changed.wait(min(left, 0.5))
        return time.monotonic() - start


def start(
    run_script: Path, cwd: Path, *, stdin: bool = False
) -> tuple[subprocess.Popen[bytes], Console]:
    """Run ``bin/microvm-run`` in *cwd*; with *stdin*, its input is a pipe (the console)."""
    proc = subprocess.Popen(
        [str(run_script)],
        cwd=cwd,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, Console(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of a guest (its whole process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


async def _qmp(socket_path: Path, command: str, arguments: dict[str, Any] | None = None) -> Any:
    from qemu.qmp import QMPClient

    client = QMPClient("nixgen-test")
    await client.connect(str(socket_path))
    try:
        return await client.execute(command, arguments)
    finally:
        # After `quit` QEMU may close the connection first: that is not a failure.
        with contextlib.suppress(EOFError, ConnectionError):
            await client.disconnect()


def qmp(socket_path: Path, command: str, arguments: dict[str, Any] | None = None) -> Any:
    return asyncio.run(asyncio.wait_for(_qmp(socket_path, command, arguments), 10))


def processes_in(folder: Path) -> list[int]:
    """Ids of the processes whose working directory is *folder*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cwd").resolve() == folder.resolve():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class TestRealGuest:
    pytestmark = _NEEDS_NIX

    def test_runner_starts_qemu_on_the_guest_image(self, guest: BuildResult) -> None:
        text = guest.run_script.read_text()
        assert "qemu-system-x86_64" in text
        assert "microvm,accel=tcg,acpi=on,mem-merge=on,pcie=on,pic=off,pit=off" in text
        assert "nixgen.host=boot" in text and "unix:boot.sock,server,nowait" in text
        assert "-m 384M" in text.replace("'", "") and "-smp 1" in text.replace("'", "")
        assert guest.shutdown_script is not None
        assert str(guest.kernel) in text  # the NixOS kernel stays in the closure

    def test_boot_qmp_status_and_clean_shutdown(self, guest: BuildResult, workdir: Path) -> None:
        proc, console = start(guest.run_script, workdir)
        try:
            console.wait_for(f"{BOOT_MARKER} boot", BOOT_TIMEOUT)
            status = qmp(workdir / "boot.sock", "query-status")
            assert status["status"] == "running", status
            assert status["running"] is True
            assert guest.shutdown_script is not None
            started = time.monotonic()
            done = subprocess.run(
                [str(guest.shutdown_script)],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=EXIT_TIMEOUT,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert proc.wait(timeout=max(1.0, EXIT_TIMEOUT - (time.monotonic() - started))) == 0
            console.wait_for(f"{REBOOT_MARKER} boot", 5)  # Ctrl-Alt-Del reached the guest
            assert not processes_in(workdir)
        finally:
            stop(proc)

    def test_sigkill_leaves_no_qemu_then_console_and_power_button(
        self, guest: BuildResult, workdir: Path
    ) -> None:
        proc, console = start(guest.run_script, workdir)
        try:
            console.wait_for(f"{BOOT_MARKER} boot", BOOT_TIMEOUT)
            proc.send_signal(signal.SIGKILL)  # microvm-run execs qemu: this is qemu
            assert proc.wait(timeout=10) == -signal.SIGKILL
            deadline = time.monotonic() + 5
            while processes_in(workdir) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not processes_in(workdir)
            # The socket file is left behind; shutting down finds nothing to stop.
            assert guest.shutdown_script is not None
            done = subprocess.run(
                [str(guest.shutdown_script)],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            assert done.returncode == 0 and "not running" in done.stdout
        finally:
            stop(proc)
        # qemu replaces the stale socket: the guest boots again in the same folder.
        # This time: a command on the serial console, then the ACPI power button.
        proc, console = start(guest.run_script, workdir, stdin=True)
        try:
            console.wait_for(f"{BOOT_MARKER} boot", BOOT_TIMEOUT)
            assert proc.stdin is not None
            proc.stdin.write(b"echo console-$((6 * 7)) on $(hostname)\n")
            proc.stdin.flush()
            console.wait_for("console-42 on boot", 10)
            assert qmp(workdir / "boot.sock", "query-status")["status"] == "running"
            qmp(workdir / "boot.sock", "system_powerdown")
            assert proc.wait(timeout=EXIT_TIMEOUT) == 0
            console.wait_for(f"{POWEROFF_MARKER} boot", 5)
        finally:
            stop(proc)
