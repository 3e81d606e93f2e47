#!/usr/bin/env python3
"""A PEP 503 package index of this checkout's packages, served over HTTP on 127.0.0.1.

    .venv/bin/python scripts/package_index.py [--out .index] [--dists FOLDER] [--port 8765]

Builds every wheel and sdist (scripts/build_dists.py, or takes `--dists`), writes a static
"simple" index next to them (`<out>/simple/<project>/index.html`, each link with its sha256 and
`data-requires-python`) and serves `<out>` until interrupted, so that the packages can be installed
by name exactly as from a public index:

    pip install --index-url http://127.0.0.1:8765/simple --extra-index-url https://pypi.org/simple osiris-compiler

The tests start the same server in-process (`serve`) on a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import hashlib
import html
import re
import shutil
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from build_dists import build  # noqa: E402


def normalize(name: str) -> str:
    """A project name as PEP 503 spells its folder: lowercase, runs of `-_.` as one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _metadata(path: Path) -> email.message.Message:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            text = zf.read(name).decode("utf-8")
    else:
        with tarfile.open(path) as tf:
            member = next(m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
            text = tf.extractfile(member).read().decode("utf-8")
    return email.parser.HeaderParser().parsestr(text)


def write_index(files: Path, root: Path) -> dict[str, list[str]]:
    """Copy the distributions in `files` to `<root>/files` and write `<root>/simple`; project -> file names."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[tuple[str, str, str]]] = {}
    for path in sorted(files.iterdir()):
        if not path.name.endswith((".whl", ".tar.gz")):
            continue
        meta = _metadata(path)
        target = root / "files" / path.name
        if path.resolve() != target.resolve():
            shutil.copy2(path, target)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        projects.setdefault(normalize(meta["Name"]), []).append((path.name, digest, meta.get("Requires-Python") or ""))
    simple = root / "simple"
    simple.mkdir(exist_ok=True)
    links = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in sorted(projects))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n", encoding="utf-8")
    for project, entries in projects.items():
        body = "".join(
            f'<a href="../../files/{html.escape(name)}#sha256={digest}"'
            + (f' data-requires-python="{html.escape(rp)}"' if rp else "")
            + f">{html.escape(name)}</a><br>\n"
            for name, digest, rp in entries
        )
        (simple / project).mkdir(exist_ok=True)
        (simple / project / "index.html").write_text(
            f"<!DOCTYPE html>\n<html><body>\n<h1>Links for {project}</h1>\n{body}</body></html>\n", encoding="utf-8"
        )
    return {p: [e[0] for e in entries] for p, entries in projects.items()}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged; an installer makes hundreds."""


@contextmanager
def serve(root: Path, port: int = 0) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 (a free port unless given) in a thread; yields the index URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="package-index", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".index", help="the index folder (default .index/)")
    parser.add_argument("--dists", type=Path, help="a folder of built distributions (default: build them now)")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    dists = args.dists or args.out / "files"
    if args.dists is None:
        build(dists)
    projects = write_index(dists, args.out)
    print(f"==> {sum(map(len, projects.values()))} files of {len(projects)} projects in {args.out}")
    with serve(args.out, args.port) as url:
        print(f"==> serving {url} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
