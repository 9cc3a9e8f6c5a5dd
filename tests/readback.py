"""Reads every file netsql exported with independent readers (pyarrow, DuckDB) and checks
them against each other: the schema of the binary formats, and every row of every format.
Usage: readback.py DIR; DIR holds out.{csv,tsv,json,ndjson,parquet,arrow}. Prints OK."""
import csv
import json
import sys

import duckdb
import pyarrow.ipc
import pyarrow.parquet

d = sys.argv[1]
parquet = pyarrow.parquet.read_table(f"{d}/out.parquet")
arrow = pyarrow.ipc.open_file(f"{d}/out.arrow").read_all()

expected_types = {
    "proto": "string",
    "local_port": "int32",
    "recv_q": "uint64",
    "inode": "uint64",
    "path": "string",
    "aliases": "list<string>",
    "stamp": "timestamp[*, tz=UTC]",
}
for name, table in [("parquet", parquet), ("arrow", arrow)]:
    got = {f.name: str(f.type).replace("item: ", "").replace("element: ", "") for f in table.schema}
    # Any time unit, as long as it is a UTC timestamp.
    got["stamp"] = got["stamp"].replace("[ns,", "[*,").replace("[us,", "[*,")
    assert got == expected_types, f"{name} schema {got}"

rows = parquet.to_pylist()
assert rows == arrow.to_pylist(), "parquet and arrow rows differ"
assert len(rows) == 7, len(rows)


def text(value):
    """A value as the text formats write it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return value
    if hasattr(value, "isoformat"):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return str(value)


want = [{k: text(v) for k, v in r.items()} for r in rows]

for name, delimiter in [("csv", ","), ("tsv", "\t")]:
    with open(f"{d}/out.{name}", newline="") as f:
        got = list(csv.DictReader(f, delimiter=delimiter))
    for g, w in zip(got, want, strict=True):
        for key in ["proto", "local_port", "recv_q", "inode", "path"]:
            assert g[key] == w[key], (name, key, g, w)
        assert g["stamp"].startswith(w["stamp"]), (name, g["stamp"], w["stamp"])

json_rows = json.load(open(f"{d}/out.json"))
ndjson_rows = [json.loads(line) for line in open(f"{d}/out.ndjson")]
assert json_rows == ndjson_rows, "json and ndjson differ"
for g, r in zip(json_rows, rows, strict=True):
    for key in ["proto", "local_port", "recv_q", "inode", "path", "aliases"]:
        assert g[key] == r[key], ("json", key, g, r)
    assert g["stamp"].startswith(r["stamp"].strftime("%Y-%m-%dT%H:%M:%S")), g["stamp"]

# DuckDB, a second engine, reads the Parquet file to the same rows.
con = duckdb.connect()
duck = con.sql(f"SELECT proto, local_port, recv_q, inode, path, aliases FROM '{d}/out.parquet'").fetchall()
assert [tuple(r.values())[:6] for r in rows] == [tuple(x) for x in duck], (duck, rows)
csv_count = con.sql(f"SELECT count(*) FROM read_csv('{d}/out.csv')").fetchall()[0][0]
assert csv_count == len(rows), csv_count
print("OK")
