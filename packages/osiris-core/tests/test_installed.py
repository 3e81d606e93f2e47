"""`osiris.core.installed` gives the answers `importlib.metadata` gives, for this environment and for made-up ones."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

from osiris.core import installed


def test_every_distribution_and_version_is_importlib_metadatas():
    ours = sorted((d.name, d.version) for d in installed.distributions())
    theirs = sorted({(d.metadata["Name"], d.version) for d in metadata.distributions()})
    assert ours == theirs
    for name, version in theirs:
        assert installed.version(name) == version
        assert installed.version(name.upper().replace("-", "_")) == version  # names compare normalized
    assert installed.version("no-such-distribution-anywhere") is None
    assert installed.distribution("no-such-distribution-anywhere") is None


def test_every_entry_point_is_importlib_metadatas():
    groups = {ep.group for d in installed.distributions() for ep in d.entry_points}
    assert {"osiris.cli", "osiris.components", "console_scripts"} <= groups
    for group in groups:
        ours = [(ep.name, ep.value, ep.dist.name) for ep in installed.entry_points(group)]
        theirs = [(ep.name, ep.value, ep.dist.name) for ep in metadata.entry_points(group=group)]
        assert sorted(ours) == sorted(theirs), group


def test_an_entry_point_loads_what_it_names():
    (run,) = [ep for ep in installed.entry_points("osiris.cli") if ep.name == "run"]
    from osiris.runtime.cli import run_command

    assert run.load() is run_command
    assert installed.EntryPoint("x", "osiris.core.installed:EntryPoint.load", "g").load() is installed.EntryPoint.load
    assert installed.EntryPoint("x", "osiris.core.installed [extra]", "g").load() is installed


def _site(tmp_path: Path, folders: dict[str, dict[str, str]]) -> Path:
    site = tmp_path / "site"
    for folder, files in folders.items():
        (site / folder).mkdir(parents=True)
        for name, text in files.items():
            (site / folder / name).write_text(textwrap.dedent(text).lstrip())
    return site


def test_made_up_installs_read_as_importlib_metadata_reads_them(tmp_path):
    """Folded headers, egg-info folders, comments in entry_points.txt, and the first of two folders of one
    name on the path winning: compared with `importlib.metadata` in a process that sees only these."""
    first = _site(
        tmp_path / "a",
        {
            "Acme_Plugin-1.2.0.dist-info": {
                "METADATA": """
                    Metadata-Version: 2.1
                    Name: Acme_Plugin
                    Version: 1.2.0
                    Summary: a summary
                      folded over two lines
                    Description-Content-Type: text/markdown

                    Version: 9.9.9 (in the body, not a header)
                    """,
                "entry_points.txt": """
                    # a comment
                    [osiris.components]
                    acme = acme_plugin.components

                    [console_scripts]
                    acme-tool = acme_plugin.cli:main [cli]
                    """,
            },
            "legacy.egg-info": {"PKG-INFO": "Metadata-Version: 1.1\nName: legacy\nVersion: 0.1\n"},
        },
    )
    second = _site(
        tmp_path / "b",
        {
            "acme_plugin-0.9.0.dist-info": {"METADATA": "Name: acme-plugin\nVersion: 0.9.0\n"},
            "other-3.dist-info": {
                "METADATA": "Name: other\nVersion: 3\n",
                "entry_points.txt": "[osiris.cli]\nx = y:z\n",
            },
        },
    )
    probe = f"""
        import json, sys
        sys.path[:] = [{str(first)!r}, {str(second)!r}, *[p for p in sys.path if "python3" in p and "site-packages" not in p]]
        from importlib import metadata
        sys.path.insert(0, {str(Path(installed.__file__).parents[2])!r})
        from osiris.core import installed
        sys.path.pop(0)
        groups = ["osiris.components", "console_scripts", "osiris.cli"]
        out = {{
            "ours": [sorted((d.name, d.version) for d in installed.distributions()),
                     {{g: sorted((e.name, e.value, e.dist.name) for e in installed.entry_points(g)) for g in groups}},
                     [installed.version(n) for n in ("acme-plugin", "legacy", "other", "missing")]],
            # importlib.metadata lists a shadowed distribution too; its lookups (and ours) take the first
            "theirs": [sorted({{installed.normalize(d.metadata["Name"]): (d.metadata["Name"], d.version)
                               for d in reversed(list(metadata.distributions()))}}.values()),
                       {{g: sorted((e.name, e.value, e.dist.name) for e in metadata.entry_points(group=g)) for g in groups}},
                       [next(iter([d.version for d in [metadata.distribution(n)]]), None) if n != "missing" else None
                        for n in ("acme-plugin", "legacy", "other", "missing")]],
        }}
        print(json.dumps(out))
        """
    proc = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(probe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import json

    got = json.loads(proc.stdout)
    assert got["ours"] == got["theirs"]
    assert got["ours"][2] == ["1.2.0", "0.1", "3", None]
