"""The mock kdump writer writes each distribution's files in that distribution's order."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from mocks.host import ManualClock
from mocks.kdump import LAYOUTS, DumpSpec, KdumpWriter
from oob.dump.formats import HEAD_SIZE, detect_format
from oob.dump.layouts import FileInfo, assess, parse_dir_name
from oob.dump.panic import panic_lines

CRASH = datetime(2024, 5, 2, 3, 4, 5)


def spec(layout: str, **kwargs: object) -> DumpSpec:
    values: dict[str, object] = {
        "size": 40 * 1024,
        "chunk": 16 * 1024,
        "crash_time": CRASH,
        "hostname": "web01",
    }
    values.update(kwargs)
    return DumpSpec(layout=layout, **values)  # type: ignore[arg-type]


def names_after_each_step(writer: KdumpWriter) -> list[list[str]]:
    seen: list[list[str]] = []
    for _ in writer.steps():
        if writer.directory is not None:
            seen.append(sorted(p.name for p in writer.directory.iterdir()))
    return seen


def compress(history: list[list[str]]) -> list[list[str]]:
    """Successive distinct listings (chunks of the same file collapse)."""
    out: list[list[str]] = []
    for listing in history:
        if not out or out[-1] != listing:
            out.append(listing)
    return out


@pytest.mark.parametrize(
    ("layout", "identity", "directory", "sequence"),
    [
        (
            "rhel-local",
            None,
            "127.0.0.1-2024-05-02-03:04:05",
            [
                [],
                ["vmcore-dmesg-incomplete.txt"],
                ["vmcore-dmesg.txt"],
                ["vmcore-dmesg.txt", "vmcore-incomplete"],
                ["vmcore", "vmcore-dmesg.txt"],
                ["kexec-dmesg.log", "vmcore", "vmcore-dmesg.txt"],
            ],
        ),
        (
            "rhel-ssh",
            "fd00::11",
            "fd00::11-2024-05-02-03:04:05",
            [
                [],
                ["vmcore-dmesg-incomplete.txt"],
                ["vmcore-dmesg.txt"],
                ["vmcore-dmesg.txt", "vmcore-incomplete"],
                ["vmcore-dmesg.txt", "vmcore.flat"],
                ["kexec-dmesg.log", "vmcore-dmesg.txt", "vmcore.flat"],
            ],
        ),
        ("rhel-old", None, "127.0.0.1-2024.05.02-03:04:05", None),
        ("rhel-raw", None, "2024-05-02-03:04", [[], ["vmcore"]]),
        ("rhel-test", None, "kdump-test-20240502030405", None),
        (
            "suse",
            None,
            "2024-05-02-03-04",
            [[], ["README.txt"], ["README.txt", "dmesg"], ["README.txt", "dmesg", "vmcore"]],
        ),
        ("suse-ssh", "web01.example.com", "web01.example.com-2024-05-02-03-04", None),
        (
            "suse-old",
            None,
            "2024-05-02-03:04",
            [[], ["dmesg.txt"], ["dmesg.txt", "vmcore"], ["README.txt", "dmesg.txt", "vmcore"]],
        ),
        (
            "suse-old-ssh",
            "192.0.2.11",
            "192.0.2.11-2024-05-02-03:04",
            [
                [],
                ["dmesg.txt-incomplete"],
                ["dmesg.txt"],
                ["dmesg.txt", "vmcore-incomplete"],
                ["dmesg.txt", "vmcore"],
                ["README.txt-incomplete", "dmesg.txt", "vmcore"],
                ["README.txt", "dmesg.txt", "vmcore"],
            ],
        ),
        (
            "debian",
            None,
            "202405020304",
            [
                [],
                ["dmesg.202405020304"],
                ["dmesg.202405020304", "dump-incomplete"],
                ["dmesg.202405020304", "dump.202405020304"],
            ],
        ),
        (
            "debian-compressed",
            "db01",
            "db01-202405020304",
            [
                [],
                ["dmesg.202405020304"],
                ["dmesg.202405020304", "dump-incomplete.gz"],
                ["dmesg.202405020304", "dump.202405020304.gz"],
            ],
        ),
        (
            "debian-vmcore",
            None,
            "202405020304",
            [
                [],
                ["dmesg.202405020304"],
                ["dmesg.202405020304", "vmcore-incomplete"],
                ["dmesg.202405020304", "vmcore.202405020304"],
            ],
        ),
    ],
)
def test_files_appear_in_the_distributions_order(
    tmp_path: Path, layout, identity, directory, sequence
) -> None:
    writer = KdumpWriter(tmp_path, spec(layout, identity=identity), clock=ManualClock())
    history = compress(names_after_each_step(writer))
    assert writer.directory is not None and writer.directory.name == directory
    if sequence is not None:
        assert history == sequence
    assert writer.state == "done"
    assert writer.final_path is not None and writer.final_path.exists()
    # the layout rules agree that the result is complete
    parsed = parse_dir_name(directory)
    listing = {p.name: FileInfo(p.name, p.stat().st_size) for p in writer.directory.iterdir()}
    texts = {n: (writer.directory / n).read_text() for n in listing if n == "README.txt"}
    assert assess(parsed, listing, texts).status == "complete"


def test_every_layout_writes_a_real_header_and_the_nmi_panic(tmp_path: Path) -> None:
    expected = {"kdump-compressed": "kdump-compressed", "flattened": "flattened", "elf": "elf"}
    for layout, info in LAYOUTS.items():
        writer = KdumpWriter(tmp_path / layout, spec(layout), clock=ManualClock())
        list(writer.steps())
        assert writer.final_path is not None
        fmt = detect_format(writer.final_path.read_bytes()[:HEAD_SIZE], writer.final_path.read_bytes()[-16:])
        if layout == "debian-compressed":
            assert (fmt.kind, fmt.inner) == ("gzip", "kdump-compressed")
        else:
            assert fmt.kind == expected[info.vmcore_format], layout
            assert not fmt.truncated
        logs = [p for p in writer.directory.iterdir() if p.name.startswith(("dmesg", "vmcore-dmesg"))]
        if layout != "rhel-raw":
            assert panic_lines(logs[0].read_text()).cause == "unknown_nmi", layout


def test_time_only_passes_on_the_clock(tmp_path: Path) -> None:
    clock = ManualClock()
    writer = KdumpWriter(
        tmp_path,
        spec("rhel-local", boot_delay=20, size=64 * 1024, chunk=16 * 1024, rate=16 * 1024),
        clock=clock,
        scale=0.5,
    )
    started = time.monotonic()
    writer.run()  # ManualClock.sleep advances instantly
    assert time.monotonic() - started < 2
    # 20 s to boot, 1 s of dmesg, four 1-second chunks, all at half scale
    assert clock.now() == pytest.approx((20 + 1 + 4) * 0.5)
    assert writer.completed_at == pytest.approx(clock.now())


def test_stall_stops_part_way(tmp_path: Path) -> None:
    writer = KdumpWriter(
        tmp_path, spec("rhel-ssh", fault="stall", size=64 * 1024, fault_at=0.5), clock=ManualClock()
    )
    steps = list(writer.steps())
    assert steps[-1].action == "stall"
    assert writer.state == "stalled" and writer.final_path is None
    assert sorted(p.name for p in writer.directory.iterdir()) == ["vmcore-dmesg.txt", "vmcore-incomplete"]
    assert writer.step() is None  # nothing more, ever


@pytest.mark.parametrize(
    ("layout", "files", "marked"),
    [
        ("rhel-local", ["kexec-dmesg.log", "vmcore-dmesg.txt", "vmcore-incomplete"], True),
        (
            "rhel-ssh",
            ["kexec-dmesg.log", "vmcore-dmesg.txt", "vmcore-incomplete"],
            False,
        ),  # a stream: no rewrite
        ("suse", ["README.txt", "dmesg", "vmcore"], True),
        ("debian", ["dmesg.202405020304", "dump-incomplete"], True),
        ("debian-vmcore", ["dmesg.202405020304", "vmcore-incomplete"], True),
    ],
)
def test_disk_full_leaves_a_partial_file(tmp_path: Path, layout: str, files: list[str], marked: bool) -> None:
    writer = KdumpWriter(tmp_path, spec(layout, fault="disk_full", size=64 * 1024), clock=ManualClock())
    list(writer.steps())
    assert writer.state == "failed" and writer.final_path is None
    assert sorted(p.name for p in writer.directory.iterdir()) == files
    partial = writer.directory / files[-1 if layout != "suse" else 2]
    assert partial.stat().st_size < 64 * 1024
    assert detect_format(partial.read_bytes()[:HEAD_SIZE]).marked_incomplete is marked
    if layout == "rhel-local":
        assert "saving vmcore failed" in (writer.directory / "kexec-dmesg.log").read_text()
    if layout == "suse":
        readme = (writer.directory / "README.txt").read_text()
        assert readme.startswith("Kernel crashdump") and "saved successfully" not in readme


def test_not_armed_writes_nothing(tmp_path: Path) -> None:
    writer = KdumpWriter(tmp_path, spec("debian", fault="not_armed"), clock=ManualClock())
    assert len(list(writer.steps())) == 1
    assert writer.state == "not-armed" and list(tmp_path.iterdir()) == []


def test_background_thread_on_the_real_clock(tmp_path: Path) -> None:
    writer = KdumpWriter(tmp_path, spec("suse", boot_delay=1.0, dmesg_delay=1.0, rate=1e6), scale=0.01)
    writer.start()
    assert writer.wait(5)
    assert writer.state == "done" and writer.final_path.exists()


def test_stop_ends_a_slow_writer_promptly(tmp_path: Path) -> None:
    writer = KdumpWriter(tmp_path, spec("debian", boot_delay=3600))
    writer.start()
    time.sleep(0.05)
    started = time.monotonic()
    writer.stop()
    assert time.monotonic() - started < 1
    assert writer.state == "panicked"


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown dump layout"):
        DumpSpec(layout="windows")
    with pytest.raises(ValueError, match="unknown fault"):
        DumpSpec(fault="meteor")
    with pytest.raises(ValueError, match="no identity"):
        DumpSpec(layout="rhel-raw", identity="192.0.2.1")
