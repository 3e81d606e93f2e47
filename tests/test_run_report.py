"""`osiris runs report`: one self-contained HTML file, checked in headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) on a successful, a failed, an interrupted run and one whose status this
version does not know, all from real runs of MySQL -> DuckDB -> files with a canary secret in the connection."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from osiris_cli import run_osiris, start_osiris

pytestmark = pytest.mark.mysql

ROOT = Path(__file__).resolve().parents[1]
CANARY = "canary-R3p0rt-9c2e71"
CHROMIUM = Path(os.environ.get("OSIRIS_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("OSIRIS_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(os.environ.get("OSIRIS_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "run-report"
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
STEPS = ["orders", "customers", "revenue", "save_csv", "save_parquet"]

PIPELINE = """
oml_version: "0.1.0"
name: shop_report
steps:
  - id: orders
    component: mysql.extractor
    mode: read
    config: {{connection: "@mysql.shop", table: orders, batch_size: 500}}
  - id: customers
    component: mysql.extractor
    mode: read
    config: {{connection: "@mysql.shop", query: "SELECT id, country FROM customers"}}
  - id: revenue
    component: duckdb.processor
    mode: transform
    needs: [orders, customers]
    config:
      query: |
        {query}
  - id: save_csv
    component: filesystem.csv_writer
    mode: write
    needs: [revenue]
    config: {{path: out/revenue.csv}}
  - id: save_parquet
    component: filesystem.parquet_writer
    mode: write
    needs: [revenue]
    config: {{path: out/revenue.parquet}}
"""
GOOD_SQL = (
    "SELECT c.country, count(*) AS orders, sum(o.total) AS revenue FROM orders o "
    "JOIN customers c ON c.id = o.customer_id GROUP BY ALL ORDER BY 1"
)
# Runs for minutes on one thread: long enough to be interrupted.
SLOW_SQL = (
    "SELECT count(*) AS n FROM range(400000) a, range(400000) b, (SELECT count(*) AS k FROM orders) o "
    "WHERE (a.range * 7 + b.range + o.k) % 13 = 5"
)
# Fails at run time with the connection's password in DuckDB's own message: the runner must mask it.
BAD_SQL = "SELECT CAST('${SHOP_PW}' AS INTEGER) AS broken, * FROM orders"


def osiris(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_osiris(*args, cwd=cwd, env=env, unset=[k for k in os.environ if k.startswith("OSIRIS_RUNS_")])


@pytest.fixture(scope="module")
def shop(mysql_db: dict[str, Any], mysql_admin: Any) -> Iterator[dict[str, str]]:
    """The module's MariaDB database with customers and orders, and a user whose password is the canary."""
    name = mysql_db["database"]
    user = f"osiris_rpt_{secrets.token_hex(3)}"
    with mysql_admin(name) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{name}`.customers (id INT PRIMARY KEY, country CHAR(2))")
        cur.execute(f"CREATE TABLE `{name}`.orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2))")
        cur.execute(
            f"INSERT INTO `{name}`.customers SELECT seq, ELT(1 + seq % 4, 'DE', 'FR', 'NL', 'US') FROM seq_1_to_200"
        )
        cur.execute(f"INSERT INTO `{name}`.orders SELECT seq, 1 + seq % 200, (seq % 500) / 4 FROM seq_1_to_30000")
        for host in ("%", "localhost"):
            cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{CANARY}'")
            cur.execute(f"GRANT SELECT ON `{name}`.* TO '{user}'@'{host}'")
    try:
        yield {"database": name, "user": user}
    finally:
        with mysql_admin() as conn, conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


@pytest.fixture(scope="module")
def runs(shop: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A succeeded and a failed real run, an interrupted one and one with an unknown status made from them."""
    work = tmp_path_factory.mktemp("report")
    (work / "osiris_connections.yaml").write_text(
        textwrap.dedent(
            f"""
            connections:
              mysql:
                shop:
                  host: 127.0.0.1
                  port: 3306
                  user: {shop["user"]}
                  password: ${{SHOP_PW}}
                  database: {shop["database"]}
            """
        )
    )
    (work / "good.yaml").write_text(PIPELINE.format(query=GOOD_SQL))
    (work / "bad.yaml").write_text(PIPELINE.format(query=BAD_SQL))
    env = {"SHOP_PW": CANARY}
    out: dict[str, Any] = {"work": work}
    for kind, file, code in (("succeeded", "good.yaml", 0), ("failed", "bad.yaml", 1)):
        proc = osiris("run", file, "--json", cwd=work, env=env)
        assert proc.returncode == code, proc.stderr + proc.stdout
        assert CANARY not in proc.stdout + proc.stderr
        out[kind] = json.loads(proc.stdout)["run_id"]
    run_dir = work / "runs" / "shop_report"
    out["interrupted"] = run_interrupted(work, env)
    out["unknown"] = make_unknown_status(run_dir / out["succeeded"], run_dir)
    return out


def run_interrupted(work: Path, env: dict[str, str]) -> str:
    """A real run stopped by Ctrl-C (SIGINT) while `revenue` runs a long query; its run id."""
    from stops import events, wait_for

    (work / "slow.yaml").write_text(PIPELINE.format(query=SLOW_SQL))
    runs = work / "runs" / "shop_report"
    before = set(runs.iterdir())
    proc = start_osiris(
        "run", "slow.yaml", cwd=work, env=env, unset=[k for k in os.environ if k.startswith("OSIRIS_RUNS_")]
    )

    def started() -> Path | None:
        new = [p for p in runs.iterdir() if p not in before]
        if new and any(e["event"] == "step_start" and e.get("step_id") == "revenue" for e in events(new[0])):
            return new[0]
        return None

    run_dir = wait_for("the step `revenue` to start", started)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    return run_dir.name


def make_unknown_status(source: Path, run_dir: Path) -> str:
    """A run card from some newer runtime, with a status this one has never heard of."""
    run_id = source.name[:-6] + "n3wst8"
    target = run_dir / run_id
    shutil.copytree(source, target)
    card = json.loads((source / "run_card.json").read_text())
    card.update(run_id=run_id, status="paused_by_operator", paused={"by": "ops", "reason": "maintenance window"})
    card["steps"][-1]["status"] = "deferred"
    (target / "run_card.json").write_text(json.dumps(card, indent=2))
    return run_id


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver; a clear failure (not a skip) when it cannot start."""
    advice = (
        "the HTML report's browser tests need Debian's `chromium` and `chromium-driver` "
        f"(`{CHROMIUM}`, `{CHROMEDRIVER}`); `scripts/browser` installs them (scripts/services and scripts/test run it)"
    )
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"headless Chromium cannot start: {', '.join(missing)} missing; {advice}", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="osiris-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except Exception as exc:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"headless Chromium could not start ({type(exc).__name__}: {exc}); {advice}", pytrace=False)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def write_report(runs: dict[str, Any], kind: str) -> tuple[Path, str]:
    proc = osiris("runs", "report", runs[kind], "--json", cwd=runs["work"])
    assert proc.returncode == 0, proc.stderr
    path = Path(runs["work"]) / json.loads(proc.stdout)["report"]
    return path, path.read_text(encoding="utf-8")


def events_of(runs: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    lines = (runs["work"] / "runs" / "shop_report" / runs[kind] / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def visible_rows(driver: Any) -> list[Any]:
    return [r for r in driver.find_elements("css selector", "#events-table tbody tr") if r.is_displayed()]


def screenshot(driver: Any, name: str) -> Path:
    """The whole page as a PNG under the test artifacts folder."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 140, 12000))
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    driver.set_window_size(1280, 1600)
    return path


def test_report_is_self_contained_and_free_of_secrets(runs: dict[str, Any]) -> None:
    for kind in ("succeeded", "failed", "interrupted", "unknown"):
        path, text = write_report(runs, kind)
        assert path.name == "report.html" and path.parent.name == runs[kind]
        assert CANARY not in text, kind
        # nothing to fetch: no external address, no element that loads a resource
        assert not re.search(r"https?://|//cdn|<link\b|<img\b|<iframe\b|\bsrc=|@import", text, re.I), kind
        assert "url(" not in text.replace("url(#arrow)", ""), kind
    for p in (runs["work"] / "runs").rglob("*"):
        if p.is_file():
            assert CANARY.encode() not in p.read_bytes(), p
    _, failed = write_report(runs, "failed")
    assert "***" in failed  # the masked password where DuckDB's message had it


@pytest.mark.parametrize("kind", ["succeeded", "failed", "interrupted", "unknown"])
def test_report_in_headless_chromium(browser: Any, runs: dict[str, Any], kind: str) -> None:
    from selenium.webdriver.support.ui import Select

    path, _ = write_report(runs, kind)
    browser.get_log("browser")  # drop what an earlier page logged
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    logs = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert logs == [], logs
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"{kind}-top.png"))  # the first screen, as loaded

    card = json.loads((path.parent / "run_card.json").read_text())
    status = card["status"]
    header = browser.find_element("css selector", "header .badge")
    assert header.text == status
    # every step: a node in the graph, a row in the steps table, with its status as written
    for step in card["steps"]:
        node = browser.find_element("css selector", f".node[data-step='{step['id']}']")
        assert node.is_displayed() and step["status"] in node.text
        row = browser.find_element("css selector", f"#steps-table tr[data-step='{step['id']}']")
        assert row.find_element("css selector", ".badge").text == step["status"]
    assert [n.get_attribute("data-step") for n in browser.find_elements("css selector", ".node")] == STEPS
    timeline_steps = {b.get_attribute("data-step") for b in browser.find_elements("css selector", ".timeline .bar")}
    ran = {s["id"] for s in card["steps"] if s["status"] != "not_run"}
    assert ran <= timeline_steps
    assert browser.find_elements("css selector", ".throughput .series")

    # the events table and its filters
    events = events_of(runs, kind)
    count = browser.find_element("id", "f-count")
    assert len(visible_rows(browser)) == len(events) and count.text == f"{len(events)} of {len(events)} events"
    Select(browser.find_element("id", "f-event")).select_by_value("step_start")
    starts = [e for e in events if e["event"] == "step_start"]
    assert [r.get_attribute("data-step") for r in visible_rows(browser)] == [e["step_id"] for e in starts]
    Select(browser.find_element("id", "f-event")).select_by_value("")
    Select(browser.find_element("id", "f-step")).select_by_value("orders")
    assert len(visible_rows(browser)) == sum(e.get("step_id") == "orders" for e in events)
    browser.find_element("id", "f-reset").click()
    browser.find_element("id", "f-text").send_keys("drivers_registered")
    assert len(visible_rows(browser)) >= 1
    assert all("drivers_registered" in r.text for r in visible_rows(browser))
    browser.find_element("id", "f-reset").click()
    assert len(visible_rows(browser)) == len(events)
    browser.find_element("id", "f-problems").click()
    problems = [r.get_attribute("data-event") for r in visible_rows(browser)]
    browser.find_element("id", "f-reset").click()
    browser.find_element("css selector", ".node[data-step='revenue']").click()
    assert Select(browser.find_element("id", "f-step")).first_selected_option.text == "revenue"
    assert {r.get_attribute("data-step") for r in visible_rows(browser)} == {"revenue"}

    errors = browser.find_element("id", "errors")
    if kind == "succeeded":
        assert problems == [] and "No errors." in errors.text
    elif kind == "failed":
        assert problems == ["step_failed"]
        trace = errors.find_element("css selector", "pre").text
        assert "Traceback" in trace and "***" in trace and CANARY not in trace
        assert "revenue" in errors.text
        assert [s["status"] for s in card["steps"]] == ["succeeded", "succeeded", "failed", "not_run", "not_run"]
    elif kind == "interrupted":
        assert problems == ["step_interrupted", "run_interrupted"]
        assert "interrupted in step `revenue`" in errors.text and "SIGINT" in errors.text and "130" in errors.text
        assert [s["status"] for s in card["steps"]] == ["succeeded", "succeeded", "interrupted", "not_run", "not_run"]
        assert browser.find_element("css selector", ".node[data-step='revenue']").get_attribute("class").split() == [
            "node",
            "st-interrupted",
        ]
    else:
        note = browser.find_element("css selector", "main > .note").text
        assert "paused_by_operator" in note and "does not know" in note
        deferred = browser.find_element("css selector", ".node[data-step='save_parquet']")
        assert "st-other" in deferred.get_attribute("class") and "deferred" in deferred.text
        assert "maintenance window" in browser.find_element("id", "card").get_attribute("textContent")
    shot = screenshot(browser, kind)
    assert shot.stat().st_size > 10_000


def test_report_open_and_out(runs: dict[str, Any], tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser_cmd = f"{sys.executable} -c \"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\" %s"
    proc = osiris(
        "runs",
        "report",
        runs["failed"],
        "--out",
        str(tmp_path),
        "--open",
        cwd=runs["work"],
        env={"BROWSER": browser_cmd},
    )
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / f"shop_report-{runs['failed']}.html"
    assert written.is_file() and f"report: {written}" in proc.stdout
    assert opened.read_text() == written.resolve().as_uri()
    unwritable = osiris("runs", "report", runs["failed"], "--out", "/proc/nope/report.html", cwd=runs["work"])
    assert unwritable.returncode == 2 and "Cannot write the report" in unwritable.stderr


def test_browser_tests_fail_clearly_when_chromium_cannot_start(tmp_path: Path) -> None:
    """Without a browser the report's browser tests fail (never skip) and say how to install one."""
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    node = f"{Path(__file__).resolve()}::test_report_in_headless_chromium[succeeded]"
    for env in ({"OSIRIS_CHROMIUM": str(tmp_path / "missing")}, {"OSIRIS_CHROMIUM": str(fake)}):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=300,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        assert "1 error" in out and "skipped" not in out, out
        assert "headless Chromium" in out and "scripts/browser" in out, out
