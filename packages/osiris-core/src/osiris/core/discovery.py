"""Component discovery through the `osiris.components` entry-point group.

Each entry point names a package that holds spec files (`*.yaml`) as package
data. Discovery reads those files and never imports driver code. Osiris's own
distributions are read first, then the third-party providers (their spec files
only). A name two distributions provide is a clash: `get` raises it and
`components list` reports it, with the same message (`clash_message`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from osiris.core import installed
from osiris.core.documents import did_you_mean, load_yaml_bytes
from osiris.core.errors import ComponentError, DocumentError
from osiris.core.oml import convert
from osiris.core.spec import ComponentSpec

COMPONENTS_GROUP = "osiris.components"

# Which of our distributions provides each component family, so that an unknown component can say
# what to install. A test checks it against the specs the distributions ship.
FAMILY_PROVIDERS = {
    "filesystem": "osiris-runtime",
    "mysql": "osiris-drivers-sql",
    "duckdb": "osiris-drivers-sql",
    "supabase": "osiris-drivers-supabase",
}


def provider_hint(name: str) -> str:
    """What to install for an unknown component of one of our families whose distribution is missing."""
    dist = FAMILY_PROVIDERS.get(name.split(".", 1)[0])
    if dist is None:
        return ""
    if installed.distribution(dist) is None:
        return f"; `{name.split('.', 1)[0]}` components are provided by `{dist}`, which is not installed: `pip install {dist}`"
    return ""


@dataclass(frozen=True)
class Component:
    """A discovered component: its spec, the raw spec data and who provides it."""

    spec: ComponentSpec
    raw: dict[str, Any]
    distribution: str
    version: str
    source: str

    @property
    def name(self) -> str:
        """The component name, e.g. `mysql.extractor`."""
        return self.spec.name


@dataclass(frozen=True)
class ProviderFailure:
    """A provider (entry point) or spec file that could not be read."""

    provider: str
    distribution: str
    error: str


@dataclass
class ComponentRegistry:
    """All components found through entry points, keyed by name."""

    components: dict[str, Component] = field(default_factory=dict)
    failures: list[ProviderFailure] = field(default_factory=list)
    conflicts: dict[str, list[Component]] = field(default_factory=dict)
    _pending: list[installed.EntryPoint] = field(default_factory=list)
    # Spec files of the built-in providers not parsed yet, by file name without `.yaml` (a shipped spec file
    # is named after its component): a run parses only the specs of its manifest's components.
    _unread: dict[str, list[tuple[installed.EntryPoint, Any]]] = field(default_factory=dict)

    @classmethod
    def discover(cls) -> ComponentRegistry:
        """List the built-in providers' spec files now (each parsed when its component is asked for, or all
        of them for `all()`); keep third-party providers for when they are needed."""
        registry = cls()
        eps = sorted(installed.entry_points(COMPONENTS_GROUP), key=lambda e: (_dist_name(e), e.name))
        for ep in eps:
            if _dist_name(ep).startswith("osiris-"):
                for f in registry._spec_files(ep):
                    registry._unread.setdefault(f.name.rsplit(".", 1)[0], []).append((ep, f))
            else:
                registry._pending.append(ep)
        return registry

    def _load_pending(self) -> None:
        while self._pending:
            self._load(self._pending.pop(0))

    def _read(self, stem: str) -> None:
        for ep, f in self._unread.pop(stem, []):
            self._read_file(ep, f)

    def _read_all(self) -> None:
        self._load_pending()
        for stem in sorted(self._unread):
            self._read(stem)

    def _spec_files(self, ep: installed.EntryPoint) -> list[Any]:
        try:
            folder = resources.files(ep.value)
            return sorted((f for f in folder.iterdir() if f.name.endswith((".yaml", ".yml"))), key=lambda f: f.name)
        except Exception as exc:  # a broken plugin is reported, never fatal to the registry
            self.failures.append(ProviderFailure(ep.value, _dist_name(ep), f"{type(exc).__name__}: {exc}"))
            return []

    def _load(self, ep: installed.EntryPoint) -> None:
        for f in self._spec_files(ep):
            self._read_file(ep, f)

    def _read_file(self, ep: installed.EntryPoint, f: Any) -> None:
        dist = _dist_name(ep)
        version = (ep.dist.version if ep.dist is not None else "") or "0"
        source = f"{ep.value}/{f.name}"
        try:
            raw, index = load_yaml_bytes(f.read_bytes(), file=source)
            spec = convert(raw, ComponentSpec, file=source, index=index)
        except OSError as exc:
            self.failures.append(ProviderFailure(source, dist, f"Cannot read file: {exc.strerror or exc}"))
            return
        except DocumentError as exc:
            self.failures.append(ProviderFailure(source, dist, str(exc)))
            return
        self._add(Component(spec=spec, raw=raw, distribution=dist, version=version, source=source))

    def _add(self, comp: Component) -> None:
        if comp.name in self.conflicts:
            self.conflicts[comp.name].append(comp)
            return
        existing = self.components.get(comp.name)
        if existing is not None:
            self.conflicts[comp.name] = [existing, comp]
            del self.components[comp.name]
            return
        self.components[comp.name] = comp

    def get(self, name: str) -> Component:
        """The component called `name`; a clear error when it is unknown or provided twice.

        Third-party spec files are read (never their code) before answering, so a package that
        shadows a name, even a built-in one, is the same clash here as in `components list`.
        """
        self._load_pending()
        self._read(name)
        if name not in self.components and name not in self.conflicts:
            self._read_all()  # a spec file named otherwise than its component
        if name in self.conflicts:
            raise ComponentError(clash_message(name, self.conflicts[name]))
        try:
            return self.components[name]
        except KeyError:
            installed = ", ".join(sorted(self.components)) or "none"
            raise ComponentError(
                f"Unknown component `{name}`{did_you_mean(name, self.components)}{provider_hint(name)}; "
                f"installed components: {installed}"
            ) from None

    def all(self) -> list[Component]:
        """Every component from every provider, sorted by name (a clashing name is in `clashes()`, not here)."""
        self._read_all()
        return [self.components[n] for n in sorted(self.components)]

    def clashes(self) -> list[tuple[str, list[Component], str]]:
        """Every component name provided more than once: (name, providers, the error compile reports)."""
        self._read_all()
        return [(n, self.conflicts[n], clash_message(n, self.conflicts[n])) for n in sorted(self.conflicts)]


def _dist_name(ep: installed.EntryPoint) -> str:
    return (ep.dist.name if ep.dist is not None else "") or "<unknown>"


def installed_osiris_distributions() -> list[tuple[str, str]]:
    """(name, version) of every installed `osiris-*` distribution and of every third-party one that
    provides components (an `osiris.components` entry point), sorted by name."""
    found: dict[str, str] = {}
    for dist in installed.distributions():
        name = dist.name.lower()
        if name.startswith("osiris-") or name == "osiris" or _provides_components(dist):
            found.setdefault(name.replace("_", "-"), dist.version)
    return sorted(found.items())


def _provides_components(dist: installed.Distribution) -> bool:
    try:
        return any(ep.group == COMPONENTS_GROUP for ep in dist.entry_points)
    except Exception:  # unreadable metadata: not a provider we can use
        return False


def clash_message(name: str, providers: list[Component]) -> str:
    """What compile, run and `components list` say about a component two distributions provide."""
    listed = " and ".join(f"`{c.distribution}` ({c.source})" for c in providers)
    return f"Component `{name}` is provided twice: by {listed}; uninstall one of them"
