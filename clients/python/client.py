"""The seed's import path: ``from client import KVClient``.

A thin shim over the dkv package, so the seed's quick start works as
written from this directory, or anywhere once the package is installed
(``pip install --no-build-isolation ./clients/python`` installs this module
too)::

    from client import KVClient
    c = KVClient(port=9999)
    c.Set('hello', 'world')
    print(c.Get('hello'))
"""

from dkv import *  # noqa: F401,F403
from dkv import __all__  # noqa: F401
