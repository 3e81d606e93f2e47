"""Where a sandbox's osiris wheels come from when the host has none at hand: one configured index only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from osiris.core.errors import UserInputError
from osiris.remote import bootstrap, wheels
from osiris.remote.wheels import IndexChoice, WheelPlan, index_url, redact_url


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("OSIRIS_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "none.conf"))  # only the files a test writes
    return tmp_path


def _pip_conf(folder: Path, body: str) -> Path:
    path = folder / "pip.conf"
    path.write_text(body)
    return path


def test_the_index_is_the_first_configured_of_flag_variable_pip_setting_and_pips_default(clean_env, monkeypatch):
    assert index_url() == IndexChoice("https://pypi.org/simple", "pip's default")
    conf = _pip_conf(
        clean_env, "[global]\nindex-url = https://conf.example/simple\nextra-index-url = https://x/simple\n"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert index_url() == IndexChoice("https://conf.example/simple", "pip's configuration")
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    assert index_url() == IndexChoice("https://env.example/simple", "PIP_INDEX_URL")
    monkeypatch.setenv("OSIRIS_INDEX_URL", "https://osiris.example/simple")
    assert index_url() == IndexChoice("https://osiris.example/simple", "OSIRIS_INDEX_URL")
    assert index_url("https://flag.example/simple") == IndexChoice("https://flag.example/simple", "--index-url")


@pytest.mark.parametrize("section", ["global", "install", "download"])
def test_pips_index_url_is_read_from_any_section_pip_uses(clean_env, monkeypatch, section):
    conf = _pip_conf(clean_env, f"[{section}]\nindex-url = https://{section}.example/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert index_url().url == f"https://{section}.example/simple"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:s3cret@pkgs.example/simple", "https://pkgs.example/simple"),
        ("https://token@pkgs.example:8443/simple/", "https://pkgs.example:8443/simple/"),
        ("http://127.0.0.1:8765/simple", "http://127.0.0.1:8765/simple"),
    ],
)
def test_index_urls_are_shown_without_credentials(url, shown):
    assert redact_url(url) == shown
    assert IndexChoice(url, "x").display == shown


def test_a_missing_version_names_distribution_version_and_index(tmp_path, monkeypatch):
    monkeypatch.setenv("OSIRIS_WHEEL_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "index"
    (empty / "osiris-core").mkdir(parents=True)
    (empty / "osiris-core" / "index.html").write_text("<html><body></body></html>")
    log = tmp_path / "pip_install.log"
    choice = IndexChoice(empty.as_uri(), "--index-url")
    with pytest.raises(UserInputError) as raised:
        wheels.download_wheels([("osiris-core", "0.3.0"), ("osiris-runtime", "0.3.0")], choice, log=log)
    assert raised.value.exit_code == 2
    message = str(raised.value)
    assert "`osiris-core==0.3.0`" in message and empty.as_uri() in message and "does not have" in message
    assert "No matching distribution" in log.read_text(), "pip's output is kept"


def test_the_sandbox_installs_osiris_wheels_from_uploaded_files_only():
    plan = WheelPlan(
        base=["osiris-core==0.3.0", "osiris-runtime==0.3.0", "osiris-remote==0.3.0"],
        drivers=["acme-osiris-upper==0.1.0"],
        requirements=["pyarrow>=15"],
        from_index=["acme-osiris-upper==0.1.0"],
    )
    for install_deps in (False, True):
        cmds = bootstrap.install_commands(plan, install_deps)
        osiris_cmd = cmds[0]
        assert "--no-index --no-deps --find-links wheels" in osiris_cmd
        assert all(pin in osiris_cmd for pin in plan.all_pins)
        assert not any("osiris" in c or "acme" in c for c in cmds[1:]), "no osiris name is asked of an index"
        assert len(cmds) == (2 if install_deps else 1)


def test_a_failed_sandbox_install_leaves_the_pip_log_on_the_host_and_says_why(tmp_path):
    """An install that fails (here: a venv without pip) leaves pip's log on the host, and the error shows its end."""
    from osiris.core.errors import TerminalError
    from osiris.remote.sandbox import LocalSandbox

    host_log = tmp_path / "run" / bootstrap.PIP_LOG
    host_log.parent.mkdir(parents=True)
    host_log.write_text("# the host's downloads\n")
    plan = WheelPlan(base=["osiris-core==0.0.0"])
    sandbox = LocalSandbox(use_layers=False)
    try:
        sandbox.check(
            f"mkdir -p wheels run/artifacts/_system && {sandbox.python} -m venv --without-pip venv", what="venv"
        )
        with pytest.raises(TerminalError) as raised:
            bootstrap.install_osiris(sandbox, plan, None, False, deadline=time.monotonic() + 300, host_log=host_log)
    finally:
        sandbox.close()
    log = host_log.read_text()
    assert log.startswith("# the host's downloads\n") and "--no-index --no-deps" in log
    assert "No module named pip" in log
    assert "the end of the log" in str(raised.value) and "No module named pip" in str(raised.value)


@pytest.mark.parametrize(
    ("project", "dist", "package"),
    [
        ("packages/osiris-core", "osiris-core", "osiris/core"),
        ("examples/acme-osiris-upper", "acme-osiris-upper", "acme_osiris_upper"),
    ],
)
def test_a_wheels_code_hash_is_the_hash_of_the_package_it_installs(tmp_path, project, dist, package):
    """What the host compares before uploading a downloaded wheel: the same hash as the installed code's."""
    import zipfile

    from osiris.remote.dists import tree_sha256

    root = Path(__file__).resolve().parents[3]
    wheel = wheels.build_wheel(root / project, tmp_path / "w")
    zipfile.ZipFile(wheel).extractall(tmp_path / "x")
    assert wheels.wheel_code_sha256(wheel, dist) == tree_sha256(tmp_path / "x" / package)
    assert wheels.wheel_code_sha256(wheel, dist) == tree_sha256(root / project / "src" / package)
