"""Wheel layout, tag and version: the package carries a compiled SQLite
extension (.so) but no CPython extension module, so the wheel is a platform
wheel (platlib) tagged py3-none-<platform>. The version is the Rust
workspace's, written only in the root Cargo.toml."""

from pathlib import Path

from setuptools import Distribution, setup

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70
    from wheel.bdist_wheel import bdist_wheel


HERE = Path(__file__).resolve().parent


def workspace_version():
    """VERSION next to this file: `make wheel` writes it, from cargo metadata,
    into the staged copy of python/ it builds from."""
    staged = HERE / "VERSION"
    if not staged.is_file():
        raise SystemExit(f"litefs-guard: {staged} is missing: build the wheel with `make wheel`")
    return staged.read_text().strip()


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(version=workspace_version(), distclass=BinaryDistribution, cmdclass={"bdist_wheel": PlatformWheel})
