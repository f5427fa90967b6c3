"""Every Python package folder is installed: a non-editable ``pip install .`` must carry all of them."""

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TOP = {"core": "vtts", "supervisor": "vtts.supervisor", "workers": "vtts.workers", "frontend": "vtts.frontend",
       "configs": "vtts.configs"}


def test_every_package_folder_is_listed_with_its_directory() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, dirs = set(tool["packages"]), tool["package-dir"]
    for folder, name in TOP.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            package = ".".join([name, *rel.parts]) if rel.parts else name
            assert package in listed, f"{package} ({init.parent}) is missing from [tool.setuptools] packages"
            assert dirs.get(package) == "/".join([folder, *rel.parts]), f"{package} needs a package-dir entry"
