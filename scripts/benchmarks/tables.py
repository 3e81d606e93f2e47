"""The benchmark source table, shared by `scripts/bench` (S1-S3) and `scripts/bench mysql-extract`.

Plain strings only, so that both the project's venv and the benchmark venv can import it.
"""

# The 15-column source table, about 500 bytes a row. No DOUBLE column: dlt's pyarrow backend
# reads MariaDB DOUBLE as decimals whose precision changes between batches, and then both of
# its fast loaders fail on the table (Parquet/ADBC and CSV alike).
ROWS_DDL = """
CREATE TABLE {table} (
  id BIGINT NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  qty SMALLINT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  price DECIMAL(10,4) NULL,
  score DECIMAL(16,6) NULL,
  counter BIGINT NOT NULL,
  code VARCHAR(16) NOT NULL,
  name VARCHAR(64) NOT NULL,
  email VARCHAR(100) NULL,
  note TEXT NULL,
  created_at DATETIME(6) NOT NULL,
  day DATE NOT NULL,
  active BOOLEAN NOT NULL,
  attrs JSON NULL
)
"""
ROWS_FILL = """
INSERT INTO {table}
SELECT seq,
       seq % 10000,
       seq % 50,
       (seq % 100000) / 100,
       IF(seq % 7 = 0, NULL, (seq % 1000000) / 10000),
       IF(seq % 11 = 0, NULL, seq / 3.0),
       seq * 1000003,
       CONCAT('C', LPAD(seq % 100000, 8, '0')),
       CONCAT('customer ', seq % 10000, ' ', MD5(seq)),
       IF(seq % 5 = 0, NULL, CONCAT('user', seq, '@example.com')),
       IF(seq % 13 = 0, NULL, REPEAT(MD5(seq * 7), 7)),
       TIMESTAMP('2024-01-01') + INTERVAL seq SECOND + INTERVAL (seq % 1000) MICROSECOND,
       DATE('2024-01-01') + INTERVAL (seq % 700) DAY,
       seq % 3 = 0,
       IF(seq % 4 = 0, NULL, JSON_OBJECT('k', seq % 97, 'tag', CONCAT('t', seq % 13)))
FROM seq_1_to_{n}
"""
