"""Builds the extension snap._snap from python/src/*.cpp and the headers in ../include.

    pip install --no-build-isolation ./python

needs no network: setuptools, pybind11's headers (Debian's pybind11-dev, or the pybind11 package
when installed), Python's headers (python3-dev) and Eigen 3.4 (libeigen3-dev). The translation
units compile in parallel (SNAP_BUILD_JOBS, default: the number of CPUs).
"""

import os
import pathlib
import sysconfig
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
INCLUDE = HERE.parent / "include"


def pybind11_include():
    try:
        import pybind11

        return pybind11.get_include()
    except ImportError:
        return "/usr/include"  # Debian's pybind11-dev


def eigen_include():
    for candidate in [os.environ.get("EIGEN3_INCLUDE_DIR"), "/usr/include/eigen3", "/usr/local/include/eigen3"]:
        if candidate and (pathlib.Path(candidate) / "Eigen" / "Core").exists():
            return candidate
    raise RuntimeError("snap: Eigen 3.4 not found (apt-get install libeigen3-dev, or set EIGEN3_INCLUDE_DIR)")


class ParallelBuild(build_ext):
    """build_ext that compiles the translation units in parallel."""

    def build_extensions(self):
        jobs = int(os.environ.get("SNAP_BUILD_JOBS", os.cpu_count() or 1))
        compiler = self.compiler

        def compile_parallel(sources, output_dir=None, macros=None, include_dirs=None, debug=0, extra_preargs=None,
                             extra_postargs=None, depends=None):
            macros, objects, extra, pp_opts, build = compiler._setup_compile(output_dir, macros, include_dirs, sources,
                                                                               depends, extra_postargs)
            options = compiler._get_cc_args(pp_opts, debug, extra_preargs)

            def one(obj):
                source, ext = build[obj]
                compiler._compile(obj, source, ext, options, extra, pp_opts)

            with ThreadPoolExecutor(jobs) as pool:
                list(pool.map(one, objects))
            return objects

        compiler.compile = compile_parallel
        super().build_extensions()


if not INCLUDE.exists():
    raise RuntimeError(f"snap: {INCLUDE} not found: build from a clone of the repository (pip install ./python)")

extension = Extension(
    "snap._snap",
    sources=sorted(str(path.relative_to(HERE)) for path in (HERE / "src").glob("*.cpp")),
    include_dirs=[str(INCLUDE), pybind11_include(), eigen_include(), sysconfig.get_paths()["include"]],
    language="c++",
    extra_compile_args=["-std=c++20", "-O2", "-fvisibility=hidden", "-g0"],
)

setup(packages=["snap"], ext_modules=[extension], cmdclass={"build_ext": ParallelBuild})
