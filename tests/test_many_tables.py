"""Many tables in one pipeline, end to end on the real MariaDB and PostgreSQL: `osiris discover`, one
`tables:` pattern expanded into per-table steps, parallel runs on the host and in a `local` sandbox,
`on_error: continue` with `--resume`, and drift of the source from its snapshot."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from databases import mariadb_database, postgres_database
from many_tables import TABLES, fill_source, mysql_table, pg_table, pipeline_text, write_connections
from osiris_cli import run_osiris

COPIED = [t.name for t in TABLES]


@pytest.fixture
def project(tmp_path: Path):
    """A source filled with generated tables, an empty target, the connections file and the pipeline."""
    seed = random.randrange(1 << 30)
    with mariadb_database("osiris_many") as src, postgres_database("osiris_many") as dst:
        fill_source(src, seed=seed)
        write_connections(tmp_path / "osiris_connections.yaml", mysql_database=src.name, pg_database=dst.name)
        (tmp_path / "all.yaml").write_text(pipeline_text(src.name))
        yield tmp_path, src, dst, seed


def _discover(cwd: Path, *extra: str) -> None:
    done = run_osiris("discover", "@mysql.src", *extra, cwd=cwd)
    assert done.returncode == 0, done.stderr


def _card(cwd: Path, stdout: str) -> dict:
    return json.loads(Path(cwd, json.loads(stdout)["run_card"]).read_text())


def _assert_copied(src, dst, seed: int, tables=COPIED) -> None:
    for name in tables:
        assert pg_table(dst, name) == mysql_table(src, name), (name, seed)


def test_one_pattern_copies_every_table_on_the_host_and_in_a_sandbox(project):
    cwd, src, dst, seed = project
    _discover(cwd)
    snapshot = (cwd / "mysql.src.snapshot.yaml").read_text()
    _discover(cwd)
    assert (cwd / "mysql.src.snapshot.yaml").read_text() == snapshot  # deterministic
    builds = []
    for out in ("b1", "b2"):
        done = run_osiris("compile", "all.yaml", "-o", out, cwd=cwd)
        assert done.returncode == 0, done.stderr
        builds.append(next((cwd / out).rglob("manifest.yaml")).read_bytes())
    assert builds[0] == builds[1]
    manifest = builds[0].decode()
    for name in COPIED:
        assert f"- id: copy-{name}-read" in manifest and f"- id: copy-{name}-write" in manifest
    assert "scratch" not in manifest

    host = run_osiris("run", "all.yaml", "--json", "--max-parallel", "3", cwd=cwd)
    assert host.returncode == 0, host.stderr + host.stdout
    card = _card(cwd, host.stdout)
    assert [s["status"] for s in card["steps"]] == ["succeeded"] * (2 * len(COPIED))
    _assert_copied(src, dst, seed)

    with dst.cursor() as cur:  # the sandbox run replaces what the host run wrote
        cur.execute('TRUNCATE "Order", codes')
    sandbox = run_osiris("run", "all.yaml", "--json", "--sandbox", "local", cwd=cwd)
    assert sandbox.returncode == 0, sandbox.stderr + sandbox.stdout
    _assert_copied(src, dst, seed)
    in_sandbox = _card(cwd, sandbox.stdout)
    hashes = {s["id"]: [o["data_sha256"] for o in s["outputs"]] for s in card["steps"]}
    assert {s["id"]: [o["data_sha256"] for o in s["outputs"]] for s in in_sandbox["steps"]} == hashes


def test_a_failing_table_lets_the_others_finish_and_resume_reruns_only_it(project):
    cwd, src, dst, seed = project
    _discover(cwd)
    with src.cursor() as cur:
        cur.execute("UPDATE codes SET note = NULL LIMIT 1")
    with dst.cursor() as cur:  # the target refuses NULL notes: the load fails mid-way
        cur.execute("CREATE TABLE codes (code VARCHAR(12) PRIMARY KEY, note TEXT NOT NULL, valid_from DATE)")
        cur.execute("INSERT INTO codes VALUES ('old', 'kept', NULL)")
    first = run_osiris("run", "all.yaml", "--json", cwd=cwd)
    assert first.returncode == 1, first.stderr
    card = _card(cwd, first.stdout)
    status = {s["id"]: s["status"] for s in card["steps"]}
    assert status.pop("copy-codes-write") == "failed"
    assert set(status.values()) == {"succeeded"}
    _assert_copied(src, dst, seed, [n for n in COPIED if n != "codes"])
    with dst.cursor() as cur:
        cur.execute("SELECT code, note FROM codes")
        assert cur.fetchall() == [("old", "kept")]  # unchanged

    # A changed manifest is refused, naming why.
    (cwd / "changed.yaml").write_text(pipeline_text(src.name).replace('["scratch"]', '["scratch", "group"]'))
    refused = run_osiris("run", "changed.yaml", "--resume", card["run_id"], cwd=cwd)
    assert refused.returncode == 2 and "manifest changed" in refused.stderr

    with dst.cursor() as cur:
        cur.execute("ALTER TABLE codes ALTER COLUMN note DROP NOT NULL")
    again = run_osiris("run", "--resume", card["run_id"], "--json", cwd=cwd)
    assert again.returncode == 0, again.stderr + again.stdout
    resumed = _card(cwd, again.stdout)
    ran = [s["id"] for s in resumed["steps"] if not s.get("reused_from")]
    assert ran == ["copy-codes-write"]
    _assert_copied(src, dst, seed)
    events = (cwd / json.loads(again.stdout)["run_dir"] / "events.jsonl").read_text().splitlines()
    started = [json.loads(e)["step_id"] for e in events if json.loads(e)["event"] == "step_start"]
    assert started == ["copy-codes-write"]


def test_drift_behaves_as_the_pipeline_says(project):
    cwd, src, dst, _seed = project
    _discover(cwd)

    def run(**expect_status: str) -> list[dict]:
        done = run_osiris("run", "all.yaml", "--json", cwd=cwd)
        card = _card(cwd, done.stdout)
        status = {s["id"]: s["status"] for s in card["steps"]}
        for sid, want in expect_status.items():
            assert status[sid] == want, (sid, status, done.stdout)
        assert done.returncode == (1 if "failed" in status.values() else 0)
        run_dir = cwd / json.loads(done.stdout)["run_dir"]
        return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]

    def check_exit() -> int:
        return run_osiris("discover", "@mysql.src", "--check", cwd=cwd).returncode

    assert check_exit() == 0
    run()  # creates the targets
    # An added column: a warning, the step reads the snapshot's columns and the run goes on.
    with src.cursor() as cur:
        cur.execute("ALTER TABLE `group` ADD COLUMN extra INT DEFAULT 7")
    assert check_exit() == 1
    events = run(**{"copy-group-write": "succeeded"})
    drift = [e for e in events if e["event"] == "schema_drift"]
    assert [(e["kind"], e["action"], e["column"]) for e in drift] == [("new_column", "warn", "extra")]
    # A new table under the pattern: a warning (by default), once.
    with src.cursor() as cur:
        cur.execute("CREATE TABLE newcomer (id INT PRIMARY KEY)")
    events = run()
    assert [e["table"] for e in events if e["event"] == "schema_drift" and e["kind"] == "new_table"] == [
        f"{src.name}.newcomer"
    ]
    # A widened type stops the table's read before anything is written, others run on.
    with src.cursor() as cur:
        cur.execute("ALTER TABLE `Order` MODIFY `select` VARCHAR(40) NOT NULL")
        cur.execute("UPDATE `Order` SET `select` = 'changed'")
    before = pg_table(dst, "Order")
    run(**{"copy-Order-read": "failed", "copy-Order-write": "skipped", "copy-codes-write": "succeeded"})
    assert pg_table(dst, "Order") == before
    # ... unless the pipeline lets that kind run on.
    (cwd / "all.yaml").write_text(pipeline_text(src.name, extra="    on_drift: {changed_type: warn}\n"))
    run(**{"copy-Order-write": "succeeded"})
    assert pg_table(dst, "Order") == mysql_table(src, "Order")
    # A dropped column stops (by default).
    with src.cursor() as cur:
        cur.execute("ALTER TABLE codes DROP COLUMN valid_from")
    assert check_exit() == 1
    run(**{"copy-codes-read": "failed", "copy-codes-write": "skipped"})


def test_the_documented_example_compiles_into_one_pair_of_steps_per_table(tmp_path):
    root = Path(__file__).resolve().parents[1]
    done = run_osiris("compile", root / "docs/examples/all_tables/shop.yaml", "-o", tmp_path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = next(tmp_path.rglob("manifest.yaml")).read_text()
    for name in COPIED:
        assert f"- id: shop-{name}-read" in manifest and f"- id: shop-{name}-write" in manifest


def test_a_postgres_source_is_discovered_copied_by_a_pattern_and_checked_for_drift(tmp_path):
    with postgres_database("osiris_many_src") as src, postgres_database("osiris_many_dst") as dst:
        cur = src.cursor()
        cur.execute('CREATE TABLE "Order" (id int PRIMARY KEY, "select" varchar(20) NOT NULL, total numeric(10,2))')
        cur.execute("CREATE TABLE pairs (a int, b char(3), note text, PRIMARY KEY (b, a))")
        cur.execute("CREATE TABLE loose (x bigint, y text)")
        rng = random.Random()
        n = rng.randrange(1, 200)
        cur.execute('INSERT INTO "Order" SELECT g, %s || g, g / 7.0 FROM generate_series(1, %s) g', ("s", n))
        cur.execute("INSERT INTO pairs SELECT g, 'k' || (g %% 10), NULL FROM generate_series(1, %s) g", (n,))
        cur.execute("INSERT INTO loose SELECT g %% 3, 'y' FROM generate_series(1, %s) g", (n,))
        (tmp_path / "osiris_connections.yaml").write_text(
            "connections:\n  supabase:\n"
            f"    src: {{host: 127.0.0.1, user: postgres, password: '', dbname: {src.name}, sslmode: disable}}\n"
            f"    target: {{host: 127.0.0.1, user: postgres, password: '', dbname: {dst.name}, sslmode: disable}}\n"
        )
        done = run_osiris("discover", "@supabase.src", "--tables", "public.*", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        snapshot = (tmp_path / "supabase.src.snapshot.yaml").read_text()
        assert 'primary_key: ["b", "a"]' in snapshot and 'name: "Order"' in snapshot
        assert '{name: "select", type: "character varying(20)", nullable: false, length: 20}' in snapshot
        (tmp_path / "pg.yaml").write_text(
            'oml_version: "0.1.0"\nname: pg-copy\ntables:\n  - id: c\n    source: "@supabase.src"\n'
            '    include: ["public.*"]\n    write: {connection: "@supabase.target", schema: public, '
            "write_mode: replace, create_if_missing: true}\n"
        )
        done = run_osiris("run", "pg.yaml", cwd=tmp_path)
        assert done.returncode == 0, done.stderr + done.stdout
        for name in ("Order", "pairs", "loose"):
            assert pg_table(dst, name) == pg_table(src, name)
        cur.execute("ALTER TABLE pairs ALTER COLUMN b TYPE char(5)")
        check = run_osiris("discover", "@supabase.src", "--check", cwd=tmp_path)
        assert check.returncode == 1 and "changed from character(3) not null to character(5) not null" in check.stdout
