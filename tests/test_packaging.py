"""Packaging: every package folder ships, and the kernels ship inside the wheel."""

import configparser
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _listed_packages() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}


def test_every_package_folder_is_listed_in_setup_cfg() -> None:
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "nnscratch").rglob("__init__.py")}
    listed = _listed_packages()
    assert found - listed == set(), f"add these packages to setup.cfg [options] packages: {sorted(found - listed)}"
    assert "nnscratch.kernels" in listed


def test_kernels_folder_holds_the_cuda_sources() -> None:
    from nnscratch.cuda import KERNELS_DIR

    assert (KERNELS_DIR / "common.cuh").is_file()
