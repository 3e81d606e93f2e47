"""The driver registry: the one way drivers are registered, on the host and in a sandbox.

`DriverRegistry.populate_from_component_specs` reads each spec's
`x-runtime.driver` (``module:Class``), imports the class (only for the specs it
is asked to register), checks that its `run` takes the keyword-only contract
arguments, and returns a `RegistrationSummary` with a fingerprint over the
registered component -> driver map. `check_requirements` is the preflight
that finds missing imports named in `x-runtime.requirements` before a run starts.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from osiris.core.discovery import Component
from osiris.core.errors import TerminalError, UserInputError
from osiris.core.fingerprint import fingerprint
from osiris.core.spec import ComponentSpec
from osiris.runtime.contract import Driver

CONTRACT_ARGS = ("step_id", "config", "inputs", "ctx")

SpecLike = Component | ComponentSpec


@dataclass
class RegistrationSummary:
    """What `populate_from_component_specs` did: registered, skipped (with reason), failed (with error)."""

    registered: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""

    def to_data(self) -> dict[str, Any]:
        """The summary as plain data (the payload of the `drivers_registered` event)."""
        return {
            "registered": dict(sorted(self.registered.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "failed": dict(sorted(self.failed.items())),
            "fingerprint": self.fingerprint,
            "count": len(self.registered),
        }


@dataclass(frozen=True)
class MissingRequirement:
    """An import a component needs that cannot be found, and what provides it."""

    component: str
    module: str
    package: str
    distribution: str
    version: str = ""
    extras: tuple[str, ...] = ()

    @property
    def install(self) -> str:
        """What to install: the component's distribution with its extras when it names them, else the package."""
        if self.distribution and self.extras:
            pin = f"=={self.version}" if self.version else ""
            return f"{self.distribution}[{','.join(self.extras)}]{pin}"
        return self.package


def _spec_of(item: SpecLike) -> tuple[ComponentSpec, str, str]:
    if isinstance(item, Component):
        return item.spec, item.distribution, item.version
    return item, "", ""


def _iter_specs(specs: Iterable[SpecLike] | Mapping[str, SpecLike]) -> list[SpecLike]:
    if isinstance(specs, Mapping):
        return list(specs.values())
    return list(specs)


def load_object(target: str) -> Any:
    """Import ``module:attr`` and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected `module:Name`, got `{target}`")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _check_contract(cls: Any) -> None:
    run = getattr(cls, "run", None)
    if run is None or not callable(run):
        raise TypeError(f"`{cls.__name__}` has no `run` method")
    params = inspect.signature(run).parameters
    for name in CONTRACT_ARGS:
        p = params.get(name)
        if p is None and not any(x.kind is inspect.Parameter.VAR_KEYWORD for x in params.values()):
            raise TypeError(f"`{cls.__name__}.run` does not accept the keyword argument `{name}`")
        if p is not None and p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"`{cls.__name__}.run` takes `{name}` positionally only; the contract passes keywords")


class DriverRegistry:
    """Component name -> driver class, filled only by `populate_from_component_specs`."""

    def __init__(self) -> None:
        self._drivers: dict[str, type[Driver]] = {}
        self._targets: dict[str, str] = {}
        self.summary = RegistrationSummary()

    def populate_from_component_specs(
        self,
        specs: Iterable[SpecLike] | Mapping[str, SpecLike],
        modes: Iterable[str] | None = None,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] | None = None,
    ) -> RegistrationSummary:
        """Register the driver of every spec that passes the filters; never raises for one bad driver.

        `modes` keeps specs supporting at least one of those modes; `allow` keeps
        only the named components; `deny` drops the named components.
        """
        want_modes = set(modes) if modes is not None else None
        allowed = set(allow) if allow is not None else None
        denied = set(deny or ())
        summary = RegistrationSummary()
        for item in sorted(_iter_specs(specs), key=lambda s: _spec_of(s)[0].name):
            spec = _spec_of(item)[0]
            name = spec.name
            if allowed is not None and name not in allowed:
                summary.skipped[name] = "not in allow list"
                continue
            if name in denied:
                summary.skipped[name] = "in deny list"
                continue
            if want_modes is not None and not want_modes.intersection(spec.modes):
                summary.skipped[name] = f"modes {', '.join(spec.modes)} not requested"
                continue
            target = spec.x_runtime.driver
            try:
                cls = load_object(target)
                _check_contract(cls)
            except Exception as exc:  # one broken driver is reported, never fatal to the registry
                summary.failed[name] = f"{target}: {type(exc).__name__}: {exc}"
                continue
            self._drivers[name] = cls
            self._targets[name] = target
            summary.registered[name] = target
        summary.fingerprint = fingerprint(dict(sorted(self._targets.items())))
        self.summary = summary
        return summary

    @property
    def fingerprint(self) -> str:
        """sha256 over the canonical JSON of the registered component -> driver map."""
        return fingerprint(dict(sorted(self._targets.items())))

    def components(self) -> list[str]:
        """Registered component names, sorted."""
        return sorted(self._drivers)

    def get(self, component: str) -> type[Driver]:
        """The driver class of `component`; a clear error when it is not registered."""
        cls = self._drivers.get(component)
        if cls is None:
            why = self.summary.failed.get(component) or self.summary.skipped.get(component) or "no spec was given"
            raise TerminalError(f"No driver registered for component `{component}`: {why}")
        return cls

    def create(self, component: str) -> Driver:
        """A new driver instance for `component` (its class's no-argument constructor)."""
        return self.get(component)()


def check_requirements(specs: Iterable[SpecLike] | Mapping[str, SpecLike]) -> list[MissingRequirement]:
    """Every import named in the specs' `x-runtime.requirements.imports` that cannot be found."""
    missing: list[MissingRequirement] = []
    for item in _iter_specs(specs):
        spec, dist, version = _spec_of(item)
        req = spec.x_runtime.requirements
        for i, module in enumerate(req.imports):
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                if len(req.packages) == len(req.imports):
                    package = req.packages[i]
                else:
                    package = ", ".join(req.packages) or module
                missing.append(MissingRequirement(spec.name, module, package, dist, version, tuple(req.extras)))
    return missing


def raise_for_missing(missing: list[MissingRequirement]) -> None:
    """Raise one error listing every missing requirement, or do nothing."""
    if not missing:
        return
    lines = [
        f"  - `{m.module}` for `{m.component}`: install `{m.install}`"
        + (f" (or reinstall `{m.distribution}`, which depends on it)" if m.distribution and not m.extras else "")
        for m in missing
    ]
    installs = sorted({shlex.quote(m.install) for m in missing})
    raise UserInputError(
        "Missing runtime requirements; nothing was run:\n" + "\n".join(lines),
        hint=f"pip install {' '.join(installs)}",
    )
