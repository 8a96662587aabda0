"""Dagster ``Config`` classes derived from the ``lib`` dataclasses that hold the fund's rules (issue 21 item 2).

A rule a PM tunes in the launchpad (a book limit, a VaR limit, a cost assumption, a leakage-gate belief) is a field
of a ``lib`` dataclass with its default, defined there once. The asset's ``Config`` takes those fields from the
dataclass (name, type and default) instead of restating them, so the two cannot disagree, and ``lib()`` builds the
dataclass back from a run's config::

    class RiskConfig(config_of(RiskLimits, ("level", "daily_var_limit"))):
        var_window: int = 120  # the asset's own settings, beside the rules

    limits = config.lib()  # RiskLimits(level=..., daily_var_limit=...), the other fields at their defaults
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from dagster import Config

# A derived config base -> (its lib dataclass, {dataclass field: config field}).
_DERIVED: dict[type, tuple[type, dict[str, str]]] = {}


class LibConfig(Config):
    """A ``Config`` whose fields (some of them) come from a ``lib`` dataclass: see ``config_of``."""

    def lib(self, **others: Any) -> Any:
        """The lib dataclass with this config's values (``others``: its fields the config does not carry)."""
        for cls in type(self).__mro__:
            if cls in _DERIVED:
                lib, names = _DERIVED[cls]
                return lib(**{name: getattr(self, field) for name, field in names.items()}, **others)
        raise TypeError(f"{type(self).__name__} is not derived from a lib dataclass (use config_of)")


def config_of(
    lib: type, fields: Iterable[str] | None = None, rename: Mapping[str, str] | None = None
) -> type[LibConfig]:
    """A ``LibConfig`` base class with ``fields`` of the dataclass ``lib`` (default: all), each with the
    dataclass's type and default; ``rename`` gives a field another name in the config (the launchpad's)."""
    if not dataclasses.is_dataclass(lib):
        raise TypeError(f"{lib!r} is not a dataclass")
    by_name = {f.name: f for f in dataclasses.fields(lib)}
    names = list(by_name) if fields is None else list(fields)
    rename = dict(rename or {})
    unknown = sorted((set(names) | set(rename)) - set(by_name))
    if unknown:
        raise ValueError(f"{lib.__name__} has no field {', '.join(unknown)}")
    hints = typing.get_type_hints(lib)
    spec: dict[str, Any] = {}
    for name in names:
        f = by_name[name]
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise ValueError(f"{lib.__name__}.{name} has no default: a launchpad field needs one")
        spec[rename.get(name, name)] = (hints[name], default)
    base = pydantic.create_model(f"{lib.__name__}Fields", __base__=LibConfig, **spec)  # type: ignore[call-overload]
    _DERIVED[base] = (lib, {name: rename.get(name, name) for name in names})
    return base
