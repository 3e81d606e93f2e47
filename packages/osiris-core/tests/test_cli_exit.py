"""The `osiris` console script's exit (`osiris.core.cli.entry`): main's exit code, exit handlers run,
streams flushed, and a still running thread waited for."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _entry(tmp_path: Path, before: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "run_entry.py"
    script.write_text(
        textwrap.dedent(before)
        + f"\nimport sys\nsys.argv = ['osiris', *{list(args)!r}]\nfrom osiris.core.cli import entry\nentry()\n"
    )
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def test_the_exit_code_and_the_output_are_mains_and_exit_handlers_run(tmp_path):
    proc = _entry(
        tmp_path,
        """
        import atexit
        atexit.register(lambda: print("exit handler ran", flush=True))
        """,
        "--version",
    )
    assert proc.returncode == 0, proc.stderr
    assert "osiris-core" in proc.stdout and proc.stdout.rstrip().endswith("exit handler ran")


def test_a_failing_command_keeps_its_exit_code_and_message(tmp_path):
    proc = _entry(tmp_path, "", "no-such-command")
    assert proc.returncode == 2
    assert "no-such-command" in proc.stderr


def test_a_large_output_is_flushed_whole_into_a_pipe(tmp_path):
    """Buffered output still in the stream when the command returns is written out before the process ends."""
    proc = _entry(
        tmp_path,
        """
        import sys
        sys.stdout = open(sys.stdout.fileno(), "w", buffering=1 << 20, closefd=False)
        from osiris.core import cli
        real = cli.main
        def main(argv=None):
            sys.stdout.write("x" * 500_000)
            return real(argv)
        cli.main = main
        """,
        "--version",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("x") == 500_000


def test_a_thread_still_running_is_waited_for(tmp_path):
    marker = tmp_path / "done"
    proc = _entry(
        tmp_path,
        f"""
        import threading, time
        from pathlib import Path
        def late():
            time.sleep(0.5)
            Path({str(marker)!r}).write_text("finished")
        threading.Thread(target=late).start()
        """,
        "--version",
    )
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == "finished"


def test_the_console_script_is_entry():
    script = Path(sys.executable).parent / "osiris"
    assert "from osiris.core.cli import entry" in script.read_text()
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "osiris-core" in proc.stdout
