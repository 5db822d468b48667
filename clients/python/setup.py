"""Only for setuptools older than 61 (Python 3.9's bundled 58, say), which
cannot read pyproject.toml's [project] table; newer ones take everything
from pyproject.toml."""

import setuptools

if int(setuptools.__version__.split(".")[0]) < 61:
    setuptools.setup(
        name="dkv",
        version="0.1.0",
        description="Python client of dkv, a durable replicated key-value store (standard library only)",
        packages=["dkv"],
        py_modules=["client"],
        python_requires=">=3.9",
    )
else:
    setuptools.setup()
