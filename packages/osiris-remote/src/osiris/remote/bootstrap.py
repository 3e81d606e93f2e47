"""Setting a sandbox up for a run, and bringing its files back: the host side of the file transfers.

`make_environment` makes the run's venv in a fresh sandbox (seeing the dependency layer, the
template's site-packages, or neither) and uploads the wheels and the read steps' input files;
`install_osiris` installs the osiris wheels in one installer call (its output:
`artifacts/_system/pip_install.log`).
`download` brings back what the run left: diagnostics always, data files on request or
under the size limit.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osiris.core import wire
from osiris.core.errors import TerminalError
from osiris.core.manifest import Manifest
from osiris.remote.layers import CodeLayer, DependencyLayer, pth_line
from osiris.remote.sandbox import Sandbox
from osiris.remote.wheels import WheelPlan
from osiris.runtime.sandbox_api import SandboxOptions

PIP_LOG = "artifacts/_system/pip_install.log"
PIP = "venv/bin/python -m pip install --disable-pip-version-check --no-input"
STREAMED = ("events.jsonl", "metrics.jsonl", "manifest.yaml")  # written on the host as they arrive


def make_environment(
    sandbox: Sandbox,
    plan: WheelPlan,
    layer: DependencyLayer | None,
    options: SandboxOptions,
    inputs: list[str],
    code: CodeLayer | None = None,
) -> bool:
    """Make the venv (seeing its dependencies, and the osiris `code` when it is installed in a cache) and upload
    the files (the wheels only when they are installed here); whether the install must fetch dependencies."""
    if layer is not None:
        # The layer carries pip and every third-party dependency: no ensurepip, no index.
        venv_flags, install_deps = "--without-pip", False
    elif sandbox.preinstalled_dependencies and not options.install_deps:
        venv_flags, install_deps = "--system-site-packages", False  # the template's Python holds them
    else:
        venv_flags, install_deps = "", True
    # The osiris code first, then its dependencies.
    pth = None if layer is None else (pth_line(code.site) if code is not None else "") + pth_line(layer.site)
    sandbox.make_venv(venv_flags, pth)
    if code is None:
        for wheel in plan.wheels.values():
            sandbox.upload(wheel, f"wheels/{wheel.name}")
    for rel in inputs:
        sandbox.upload(Path(rel), rel)
    return install_deps


def install_osiris(
    sandbox: Sandbox,
    plan: WheelPlan,
    layer: DependencyLayer | None,
    install_deps: bool,
    *,
    deadline: float,
    host_log: Path | None = None,
    code: CodeLayer | None = None,
) -> None:
    """Install the osiris wheels into the venv (`install_commands`), logging to the pip log.

    The log starts with what the host did (`host_log`: its downloads from the index) and comes
    back to `host_log` when an install fails, so the host always has it. With a `code` layer the
    wheels are installed already: the log says which layer, and how it was installed.
    """
    if code is not None:
        _log_code_layer(sandbox, code, host_log)
        return
    if host_log is not None and host_log.is_file():
        sandbox.upload(host_log, f"run/{PIP_LOG}")
    for cmd in install_commands(plan, install_deps, layer.uv if layer is not None else None):
        try:
            sandbox.check(
                f"echo '$ {cmd}' >> run/{PIP_LOG} && {cmd} >> run/{PIP_LOG} 2>&1",
                what=f"install of osiris (see {PIP_LOG})",
                timeout=max(60.0, deadline - time.monotonic()),
            )
        except TerminalError as exc:
            text = b""
            with contextlib.suppress(Exception):
                text = sandbox.read(f"run/{PIP_LOG}")
                if host_log is not None:
                    host_log.parent.mkdir(parents=True, exist_ok=True)
                    host_log.write_bytes(text)
            tail = "\n".join(text.decode("utf-8", "replace").strip().splitlines()[-12:])
            raise TerminalError(
                f"{exc.message.rstrip().rstrip(':')}; the end of the log:\n{tail}" if tail else str(exc)
            ) from None


def _log_code_layer(sandbox: Sandbox, code: CodeLayer, host_log: Path | None) -> None:
    """The run's pip log when its osiris wheels come installed from a code layer."""
    import tempfile

    head = host_log.read_text(encoding="utf-8") if host_log is not None and host_log.is_file() else ""
    how = "installed now" if code.built else "installed by an earlier run"
    text = (
        f"{head}# the osiris wheels, {how} into the code layer {code.key} (named by their sha256): {code.path}\n"
        + "".join(f"#   {name}\n" for name in code.wheels)
        + code.install_log.read_text(encoding="utf-8")
    )
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "pip_install.log"
        log.write_text(text, encoding="utf-8")
        sandbox.upload(log, f"run/{PIP_LOG}")


def install_commands(plan: WheelPlan, install_deps: bool, uv: Path | None = None) -> list[str]:
    """The installer calls: the osiris wheels from the uploaded files only, then (without a layer or
    template) their third-party requirements from the sandbox's index.

    No osiris name is ever looked up on an index (`--no-index --no-deps`). With a dependency
    layer that carries `uv`, the wheels are installed by `uv pip` (same flags, a fraction of
    pip's start-up time); otherwise by the venv's pip.
    """
    specs = " ".join(shlex.quote(pin) for pin in plan.all_pins)  # extras are for the requirements below
    tool = f"{shlex.quote(str(uv))} pip install --python venv/bin/python" if uv is not None else PIP
    cmds = [f"{tool} --no-index --no-deps --find-links wheels {specs}"]
    if install_deps and plan.requirements:
        cmds.append(f"{PIP} " + " ".join(shlex.quote(r) for r in plan.requirements))
    return cmds


def data_paths(manifest: Manifest, configs: dict[str, dict[str, Any]], mode: str) -> list[str]:
    """Relative `path` values of the steps in `mode` (files to upload before, or fetch after, a run)."""
    found = []
    for step in manifest.steps:
        if step.mode != mode:
            continue
        value = configs.get(step.id, {}).get("path")
        relative = isinstance(value, str) and value and not Path(value).is_absolute() and ".." not in Path(value).parts
        if relative and (mode == "write" or Path(value).is_file()):
            found.append(value)
    return found


def download(
    sandbox: Sandbox,
    cleaned: wire.Cleaned,
    run_dir: Path,
    outputs: list[str],
    options: SandboxOptions,
    emit: Callable[..., Any],
) -> dict[str, Any]:
    """Diagnostics always; data files when asked or under the size limit; streamed logs are not re-fetched."""
    limit = options.artifact_max_mb * 1024 * 1024
    fetched, skipped, written = [], [], []
    for art in cleaned.artifacts:
        if art.path in STREAMED:
            continue
        if art.data and not options.download_data and art.size > limit:
            skipped.append(art.path)
            continue
        target = run_dir / art.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sandbox.read(f"run/{art.path}"))
        fetched.append(art.path)
    for rel in outputs:
        try:
            data = sandbox.read(rel)
        except Exception:
            continue
        if not options.download_data and len(data) > limit:
            skipped.append(rel)
            continue
        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        Path(rel).write_bytes(data)
        written.append(rel)
    sandbox_card = run_dir / "run_card.json"
    if sandbox_card.exists():
        (run_dir / "artifacts" / "_system" / "run_card.json").write_bytes(sandbox_card.read_bytes())
    emit("artifacts_downloaded", origin="host", files=len(fetched), outputs=written, skipped=skipped)
    return {"files": len(fetched), "outputs": written, "skipped": skipped}
