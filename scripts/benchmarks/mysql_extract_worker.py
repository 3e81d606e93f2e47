"""One timed run of `scripts/bench mysql-extract` (`mysql_extract.py`): extract `orders` into a Parquet file, as a step.

    python mysql_extract_worker.py HOST PORT USER DATABASE OUT PATH BATCH_SIZE

PATH is the step's `read_path`: `auto` (the extractor's own choice), `native`, `connectorx` or `pymysql`. Prints the rows and the
seconds from the driver call to the hashed Parquet file. Kept apart from the benchmark so that
the measured process imports only what a step needs.
"""

import os
import sys
import time


def main() -> None:
    host, port, user, db, out, path, batch_size = sys.argv[1:8]
    from osiris.drivers.sql import mysql_extractor
    from osiris.runtime.contract import StepContext
    from osiris.runtime.io import DataHasher, use_lean_memory_pool, write_parquet_atomic

    use_lean_memory_pool()  # as `Runner.prepare` does
    ctx = StepContext(step_id="extract", output_dir=os.path.dirname(out))
    config = {
        "table": "orders",
        "batch_size": int(batch_size),
        "read_path": path,
        "resolved_connection": {"host": host, "port": int(port), "user": user, "password": "", "database": db},
    }
    t0 = time.perf_counter()
    reader = mysql_extractor.MySQLExtractor().run(step_id="extract", config=config, inputs={}, ctx=ctx)["df"]
    # Exactly as the runner writes a step output: its encoding, and data_sha256 alongside.
    hasher = DataHasher(reader.schema)
    rows = write_parquet_atomic(out, reader.schema, reader, step_id="extract", hasher=hasher)
    hasher.hexdigest()
    print(f"{rows} {time.perf_counter() - t0:.3f}")


if __name__ == "__main__":
    main()
