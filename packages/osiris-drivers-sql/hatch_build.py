"""Build hook: compile the binary-protocol row parser (`_mysql_rows.c`) into the wheel.

The wheel is tagged `cp311-abi3-<platform>`: the module uses only CPython's stable ABI.

The extension is optional. When no C compiler or Python headers are at hand, the hook
says so and the wheel is pure Python; `mysql.extractor` then reads through connectorx.
An editable install compiles it next to the source, where that install imports from.
Set `OSIRIS_BUILD_NATIVE=0` to build without it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "osiris/drivers/sql"
SOURCE = f"src/{PACKAGE}/_mysql_rows.c"


def compile_extension(source: Path, out: Path) -> str | None:
    """Compile `source` into the shared library `out`; None on success, else why not."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").is_file():
        return f"no Python.h in {include}"
    cmd = [*cc, "-O2", "-fPIC", "-shared", "-Wall", f"-I{include}", str(source), "-o", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        return f"{cmd[0]}: {exc}"
    if proc.returncode != 0:
        return f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}"
    return None


class NativeRowsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("OSIRIS_BUILD_NATIVE", "1") == "0":
            return
        source = Path(self.root) / SOURCE
        # Built against CPython's stable ABI (3.11): the wheel installs on any later CPython
        # of the same platform, such as a sandbox's.
        name = "_mysql_rows.abi3.so"
        if version == "editable":
            out = source.parent / name
            for stale in source.parent.glob("_mysql_rows*.so"):
                stale.unlink()  # an older build under another name would be imported first
        else:
            self._tmp = tempfile.mkdtemp(prefix="osiris-native-")
            out = Path(self._tmp) / name
        why = compile_extension(source, out)
        if why is not None:
            print(f"osiris-drivers-sql: building without the native row parser ({why})", file=sys.stderr)
            return
        build_data["pure_python"] = False
        build_data["tag"] = "cp311-abi3-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")
        if version != "editable":
            build_data["force_include"][str(out)] = f"{PACKAGE}/{name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
