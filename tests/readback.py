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


def unescape_tsv(field):
    """A TSV field as jq's @tsv escapes it, back to its text."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 1 < len(field):
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[field[i + 1]])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


for name in ["csv", "tsv"]:
    with open(f"{d}/out.{name}", newline="") as f:
        if name == "csv":
            got = list(csv.DictReader(f))
        else:
            lines = f.read().split("\n")[:-1]
            header = lines[0].split("\t")
            got = [dict(zip(header, map(unescape_tsv, line.split("\t")), strict=True)) for line in lines[1:]]
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
