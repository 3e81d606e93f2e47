"""The stand-in envd speaks what the real e2b SDK sends: files up and down, commands, stdin, signals."""

from __future__ import annotations

import time

import pytest


def test_real_sdk_uploads_runs_with_stdin_and_downloads(envd):
    from e2b import Sandbox

    sbx = Sandbox.create()
    try:
        assert sbx.is_running()
        sbx.files.write("work/in.txt", "hello from the host\n")
        sbx.files.write_files([{"path": "work/a.bin", "data": b"\x00\x01"}, {"path": "work/b.txt", "data": "b"}])
        assert (envd.root / "work/in.txt").read_text() == "hello from the host\n"
        assert (envd.root / "work/a.bin").read_bytes() == b"\x00\x01"

        result = sbx.commands.run("cat work/in.txt; echo oops >&2; pwd", cwd=None)
        assert result.exit_code == 0
        assert result.stdout.splitlines() == ["hello from the host", str(envd.root)]
        assert result.stderr == "oops\n"

        seen: list[str] = []
        handle = sbx.commands.run(
            'python3 -c \'import sys; data = sys.stdin.read(); open("work/out.txt", "w").write(data.upper())\'',
            background=True,
            stdin=True,
            timeout=0,
        )
        sbx.commands.send_stdin(handle.pid, "line one\n")
        handle.send_stdin(b"line two\n")
        handle.close_stdin()
        done = handle.wait(on_stdout=seen.append)
        assert done.exit_code == 0
        assert sbx.files.read("work/out.txt") == "LINE ONE\nLINE TWO\n"
        assert bytes(sbx.files.read("work/a.bin", format="bytes")) == b"\x00\x01"

        failing = sbx.commands.run("exit 3", background=True)
        with pytest.raises(Exception, match="exit"):
            failing.wait()
    finally:
        sbx.kill()


def test_real_sdk_kills_a_running_command_and_streams_output_live(envd):
    from e2b import Sandbox

    sbx = Sandbox.create()
    handle = sbx.commands.run("echo started; sleep 60", background=True, timeout=0)
    lines = []
    for stdout, _stderr, _pty in handle:
        if stdout:
            lines.append(stdout)
            break
    assert lines == ["started\n"]
    assert handle.pid in envd.running_pids()
    assert sbx.commands.kill(handle.pid)
    deadline = time.monotonic() + 10
    while handle.pid in envd.running_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handle.pid not in envd.running_pids()
    assert not sbx.commands.kill(999_999_999 % 4_000_000_000)


def test_missing_file_and_path_outside_the_root_are_errors(envd):
    from e2b import Sandbox
    from e2b.exceptions import NotFoundException

    sbx = Sandbox.create()
    with pytest.raises(NotFoundException):
        sbx.files.read("nope.txt")
    with pytest.raises(Exception, match="outside"):
        sbx.files.write("/etc/osiris-should-not-exist", "x")
