"""Numba's cache of nnscratch's kernels notices a change in any kernel module (nnscratch.cpu.kernel_cache).

Numba alone keys a cached function by its own file: the direct convolution's drivers kept running an
old tile after an edit of ``direct_codegen.py``. The locator adds a digest of every kernel module to the
stamp of this package's functions, and leaves everyone else's functions to Numba's own locators.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from numba.core.caching import CacheImpl

import nnscratch.cpu  # noqa: F401 - installs the locator
from nnscratch.cpu import kernel_cache


def test_the_locator_comes_first_once():
    kernel_cache.install()
    kernel_cache.install()
    assert CacheImpl._locator_classes.count(kernel_cache.KernelSourcesLocator) == 1
    assert CacheImpl._locator_classes[0] is kernel_cache.KernelSourcesLocator


def test_package_kernels_carry_the_kernel_modules_digest():
    from nnscratch.cpu import direct
    from nnscratch.cpu.direct_codegen import TileShape, compile_driver

    driver = compile_driver(direct._make_sample_driver, direct._SAMPLE_SIGNATURE, TileShape(8, 8, 1))
    locator = driver._cache._impl._locator
    assert isinstance(locator, kernel_cache.KernelSourcesLocator)
    assert locator.get_source_stamp()[1] == kernel_cache.kernel_sources_digest()


def test_other_code_keeps_numbas_own_locators(tmp_path):
    module = tmp_path / "user_kernels.py"
    module.write_text("def twice(x):\n    return 2 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import user_kernels

        assert kernel_cache.KernelSourcesLocator.from_function(user_kernels.twice, str(module)) is None
        assert kernel_cache.KernelSourcesLocator.from_function(user_kernels.twice, "<string>") is None
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("user_kernels", None)


def test_the_digest_follows_every_kernel_file(tmp_path, monkeypatch):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "config.py").write_text("OPTIONS = {}\n")
    monkeypatch.setattr(kernel_cache, "KERNEL_FOLDER", tmp_path)
    monkeypatch.setattr(kernel_cache, "PACKAGE_FOLDER", tmp_path)
    before = kernel_cache.kernel_sources_digest()
    assert kernel_cache.kernel_sources_digest() == before  # nothing changed
    (tmp_path / "b.py").write_text("x = 22\n")  # another module than the kernel's own
    after = kernel_cache.kernel_sources_digest()
    assert after != before
    (tmp_path / "config.py").write_text("OPTIONS = {'fastmath': True}\n")
    assert kernel_cache.kernel_sources_digest() != after


def test_a_kernel_recompiles_when_a_module_it_calls_changes(tmp_path):
    # a throwaway package laid out like nnscratch: a driver in one file inlines a helper from another;
    # editing only the helper's file must not load the driver's stale machine code
    package = tmp_path / "pkg"
    (package / "cpu").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config.py").write_text("")
    (package / "cpu" / "__init__.py").write_text("")
    (package / "cpu" / "helper.py").write_text(
        "from numba import njit\n@njit(cache=True)\ndef helper(x):\n    return x + 1\n"
    )
    (package / "cpu" / "driver.py").write_text(
        "from numba import njit\nfrom pkg.cpu.helper import helper\n"
        "@njit(cache=True)\ndef driver(x):\n    return helper(x)\n"
    )
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(tmp_path)!r})
        from nnscratch.cpu import kernel_cache
        kernel_cache.KERNEL_FOLDER = Path({str(package / "cpu")!r})
        kernel_cache.PACKAGE_FOLDER = Path({str(package)!r})
        from pkg.cpu.driver import driver
        print(driver(1), sum(driver.stats.cache_hits.values()))
        """
    )

    def run() -> list[int]:
        env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return [int(v) for v in done.stdout.split()]

    assert run() == [2, 0]  # compiled
    assert run() == [2, 1]  # loaded from the cache
    (package / "cpu" / "helper.py").write_text(
        "from numba import njit\n@njit(cache=True)\ndef helper(x):\n    return x + 10\n"
    )
    assert run() == [11, 0]  # the helper's change is seen: compiled again, not the stale driver
