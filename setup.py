"""Builds the compiled twins of the per-tag path (relay/*/_speedups.pyx) when it can.

Everything else is in pyproject.toml. The extensions are optional: without Cython or a C
compiler (Debian: build-essential and python3-dev) the install goes on without them, and
the relay runs its pure-Python modules (relay/rtmp/accel.py, relay/fanout/accel.py say
which path is in use; `relay --version` prints it).
"""

from setuptools import Extension, setup

SPEEDUPS = ["relay.rtmp._speedups", "relay.fanout._speedups"]

try:
    from Cython.Build import cythonize
except ImportError:  # no Cython: the pure-Python path
    ext_modules = []
else:
    ext_modules = cythonize(
        [Extension(name, [name.replace(".", "/") + ".pyx"], optional=True) for name in SPEEDUPS],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )
    for ext in ext_modules:  # cythonize() makes new Extension objects: keep them optional
        ext.optional = True

setup(ext_modules=ext_modules)
