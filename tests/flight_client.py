"""A Flight SQL client for the serve tests: ADBC's driver, as dashboards and scripts use.

Usage: flight_client.py URI TOKEN|- COMMAND [ARGS]   (TOKEN "-" sends none)
  query SQL            the result as JSON: {"schema": [[name, type], ...], "rows": [...]}
  prepared SQL JSON    SQL with its parameters bound: JSON a value ($1) or a list of
                       values ($1, $2, ...): integers, strings, null, true/false
  rows SQL JSON        SQL with a batch of parameter rows bound: JSON the list of $1's
  objects              {"tables": {name: [column, ...]}} from adbc_get_objects
  schema TABLE         [[name, type], ...] from adbc_get_table_schema
  results TABLE...     {name: [column, ...]}: the columns `SELECT * FROM name LIMIT 0`
                       returns, as the driver decodes the result stream
  load CLIENTS QUERIES SQL   CLIENTS threads, each QUERIES queries on its own connection:
                       {"ok": N, "exhausted": N, "other": [messages]}
  stall SQL            start fetching SQL, read one batch, print "started", then wait
                       to be killed
  drain SQL            start fetching SQL, read one batch, print "started", wait for a
                       line on stdin, then read the rest: {"rows": N} (all batches)
Errors print {"error": "<the driver's message>"} and exit 1.
Extra driver options come from NETSQL_ADBC_* variables (TLS roots, client certificate).
"""

import json
import os
import sys
import threading

import adbc_driver_flightsql.dbapi as flight
from adbc_driver_flightsql import DatabaseOptions

uri, token, command, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]


def connect():
    kwargs = {}
    if token != "-":
        kwargs[DatabaseOptions.AUTHORIZATION_HEADER.value] = "Bearer " + token
    if os.environ.get("NETSQL_ADBC_ROOTS"):
        kwargs[DatabaseOptions.TLS_ROOT_CERTS.value] = open(os.environ["NETSQL_ADBC_ROOTS"]).read()
    if os.environ.get("NETSQL_ADBC_CERT"):
        kwargs[DatabaseOptions.MTLS_CERT_CHAIN.value] = open(os.environ["NETSQL_ADBC_CERT"]).read()
        kwargs[DatabaseOptions.MTLS_PRIVATE_KEY.value] = open(os.environ["NETSQL_ADBC_KEY"]).read()
    return flight.connect(uri, db_kwargs=kwargs)


def table_json(table):
    schema = [[f.name, str(f.type)] for f in table.schema]
    return {"schema": schema, "rows": [list(r.values()) for r in table.to_pylist()]}


try:
    if command == "query":
        with connect() as conn, conn.cursor() as cur:
            cur.execute(args[0])
            print(json.dumps(table_json(cur.fetch_arrow_table()), default=str))
    elif command == "prepared":
        with connect() as conn, conn.cursor() as cur:
            values = json.loads(args[1])
            values = tuple(values) if isinstance(values, list) else (values,)
            cur.execute(args[0], parameters=values)
            print(json.dumps(table_json(cur.fetch_arrow_table()), default=str))
    elif command == "rows":
        import pyarrow as pa

        with connect() as conn, conn.cursor() as cur:
            batch = pa.record_batch([pa.array(json.loads(args[1]))], names=["$1"])
            cur.execute(args[0], parameters=batch)
            print(json.dumps(table_json(cur.fetch_arrow_table()), default=str))
    elif command == "objects":
        with connect() as conn:
            objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
            tables = {}
            for catalog in objects:
                for schema in catalog["catalog_db_schemas"] or []:
                    for table in schema["db_schema_tables"] or []:
                        tables[table["table_name"]] = [
                            c["column_name"] for c in table["table_columns"] or []
                        ]
            print(json.dumps({"tables": tables}))
    elif command == "results":
        with connect() as conn, conn.cursor() as cur:
            columns = {}
            for table in args:
                cur.execute(f"SELECT * FROM {table} LIMIT 0")
                columns[table] = [f.name for f in cur.fetch_arrow_table().schema]
            print(json.dumps(columns))
    elif command == "schema":
        with connect() as conn:
            schema = conn.adbc_get_table_schema(args[0])
            print(json.dumps([[f.name, str(f.type)] for f in schema]))
    elif command == "load":
        clients, queries, sql = int(args[0]), int(args[1]), args[2]
        counts = {"ok": 0, "exhausted": 0, "other": []}
        lock = threading.Lock()

        def work():
            with connect() as conn:
                for _ in range(queries):
                    try:
                        with conn.cursor() as cur:
                            cur.execute(sql)
                            cur.fetch_arrow_table()
                        outcome = "ok"
                    except Exception as e:  # noqa: BLE001 - every failure is counted
                        text = str(e)
                        outcome = "exhausted" if "RESOURCE_EXHAUSTED" in text.upper() or "ResourceExhausted" in text else text
                    with lock:
                        if outcome in ("ok", "exhausted"):
                            counts[outcome] += 1
                        else:
                            counts["other"].append(outcome)

        threads = [threading.Thread(target=work) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps(counts))
    elif command == "stall":
        conn = connect()
        cur = conn.cursor()
        cur.execute(args[0])
        reader = cur.fetch_record_batch()
        reader.read_next_batch()
        print("started", flush=True)
        threading.Event().wait()
    elif command == "drain":
        conn = connect()
        cur = conn.cursor()
        cur.execute(args[0])
        reader = cur.fetch_record_batch()
        rows = reader.read_next_batch().num_rows
        print("started", flush=True)
        sys.stdin.readline()
        while True:
            try:
                rows += reader.read_next_batch().num_rows
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001
                # After the last batch the driver closes its prepared statement, on a new
                # connection if the old one is gone; a server stopping (SIGTERM) once its
                # last query has ended is gone by then. The rows read are the answer.
                if "ClosePreparedStatement" not in str(e):
                    raise
                break
        print(json.dumps({"rows": rows}), flush=True)
        try:
            cur.close()
            conn.close()
        except Exception:  # noqa: BLE001 - the same close, when the server is gone
            pass
    else:
        raise SystemExit("unknown command " + command)
except Exception as e:  # noqa: BLE001 - the test reads the driver's message
    print(json.dumps({"error": str(e)}))
    sys.exit(1)
