"""What installing oob puts in a user's environment: oob and oob_mock, no package named
``mocks``, and the fleet's pytest fixtures working in a project of the user's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_package_list_covers_every_package_folder() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "oob").rglob("__init__.py")}
    assert set(config["packages"]) == found | {"oob_mock"}
    assert config["package-dir"] == {"oob_mock": "mocks"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """oob built as a wheel from a copy of the sources, installed into a folder of its own."""
    work = tmp_path_factory.mktemp("build")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("oob", "mocks"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("oob-*.whl")
    target = work / "site"
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("oob_mock/captures/") and name.endswith(".json") for name in names)
    assert not any(name.startswith("mocks/") for name in names)
    return target


def test_the_wheel_installs_oob_and_oob_mock_and_no_mocks(installed: Path) -> None:
    assert (installed / "oob" / "__init__.py").is_file()
    assert (installed / "oob_mock" / "fleet.py").is_file()
    assert not (installed / "mocks").exists()
    [entry_points] = installed.glob("oob-*.dist-info/entry_points.txt")
    assert "oob_mock = oob_mock.pytest_plugin" in entry_points.read_text()


def test_a_project_of_its_own_uses_the_fixtures(installed: Path, tmp_path: Path) -> None:
    project = tmp_path / "their-project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_with_a_fleet.py").write_text(
        textwrap.dedent(
            f"""
            import importlib.util

            import oob


            def test_fleet(mock_fleet):
                # the installed copy, not the repository's checkout
                assert oob.__file__.startswith({str(installed)!r})
                assert importlib.util.find_spec("mocks") is None
                assert type(mock_fleet).__module__ == "oob_mock.fleet"
                names = [bmc.name for bmc in mock_fleet.bmcs]
                assert "ilo5-1" in names
                assert all(bmc.address.startswith("127.") for bmc in mock_fleet.bmcs)
            """
        )
    )
    # and README's example, as a user would copy it
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### The mock fleet in your own tests") :]
    example = section[section.index("```python\n") + len("```python\n") : section.index("```\n", 10)]
    (project / "tests" / "test_readme_example.py").write_text(example)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OOB_INVENTORY")}
    env["PYTHONPATH"] = str(installed)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
