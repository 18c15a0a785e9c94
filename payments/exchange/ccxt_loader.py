"""Import ccxt's async OKX client without the hundred other exchanges ccxt ships.

``import ccxt.async_support.okx`` runs the package ``__init__`` files of ``ccxt`` and
``ccxt.async_support`` first, and those import every exchange, sync and async: about 90 MB of
RSS and half a second here, for one class. :func:`okx_class` runs those two ``__init__`` files
without their exchange import lines (everything else in them, errors and helpers included, is
kept), then imports ``ccxt.async_support.okx`` itself. Any other exchange stays reachable as an
attribute (``ccxt.binance``), imported on first use.

If ccxt has already been imported in the process, or anything in this fails (a ccxt release
that lays its package out differently), the ordinary full import is used instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import sys
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# lines like "from ccxt.binance import binance" (also under async_support), not ccxt.base
_EXCHANGE_IMPORT = re.compile(
    r"^from (ccxt(?:\.async_support)?)\.(?!base\b)(\w+) import \2\b[^\n]*$", re.MULTILINE
)
_PACKAGES = ("ccxt", "ccxt.async_support")
_LEAN_MARK = "__subsbot_lean__"


def okx_class() -> Any:
    """``ccxt.async_support.okx.okx``, importing as little of ccxt as possible."""
    if not any(name in sys.modules for name in _PACKAGES):
        try:
            for name in _PACKAGES:
                _load_lean(name)
            from ccxt.async_support.okx import okx

            return okx
        except Exception:  # pragma: no cover - depends on ccxt's layout
            log.debug("lean ccxt import failed; importing all of ccxt", exc_info=True)
            for name in _PACKAGES:
                module = sys.modules.get(name)
                if module is not None and getattr(module, _LEAN_MARK, False):
                    del sys.modules[name]
    import ccxt.async_support as full

    return full.okx


def _load_lean(name: str) -> None:
    """Execute package ``name``'s ``__init__`` without its exchange imports."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not a package")
    with open(spec.origin, encoding="utf-8") as source:
        code, removed = _EXCHANGE_IMPORT.subn("", source.read())
    if not removed:
        raise ImportError(f"{name}: no exchange imports found to skip")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _LEAN_MARK, True)
    module.__getattr__ = _lazy_exchange(name)  # type: ignore[method-assign]
    sys.modules[name] = module
    try:
        exec(compile(code, spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def _lazy_exchange(package: str) -> Any:
    def __getattr__(attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        try:
            module: ModuleType = importlib.import_module(f"{package}.{attribute}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {package!r} has no attribute {attribute!r}") from None
        return getattr(module, attribute, module)

    return __getattr__
