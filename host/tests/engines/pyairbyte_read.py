"""Reads every stream of an Airbyte source through PyAirbyte into a local DuckDB cache.

Usage: pyairbyte_read.py EXECUTABLE CONFIG_JSON CACHE_DIR OUT_JSONL

Runs check, selects every stream and reads them all, then writes to OUT_JSONL, per stream,
the primary keys of the rows the cache holds (one JSON object per line, every value as
text), so the test compares them with the simulator's ground truth. PyAirbyte prints its
progress on stdout, hence the file.
"""

import json
import sys

import airbyte as ab
import sqlalchemy

executable, config_path, cache_dir, out_path = sys.argv[1:5]
with open(config_path, encoding="utf-8") as f:
    config = json.load(f)

source = ab.get_source("source-datahub", config=config, local_executable=executable)
source.check()
source.select_all_streams()
cache = ab.new_local_cache(cache_name="datahub", cache_dir=cache_dir, cleanup=True)
result = source.read(cache=cache)

with cache.get_sql_engine().connect() as connection, open(out_path, "w", encoding="utf-8") as out:
    for stream in source.discovered_catalog.streams:
        table = result[stream.name].to_sql_table()
        key = [table.c[path[0]] for path in stream.source_defined_primary_key]
        rows = connection.execute(sqlalchemy.select(*key)).fetchall()
        keys = [[str(value) for value in row] for row in rows]
        out.write(json.dumps({"stream": stream.name, "records": len(result[stream.name]), "keys": keys}) + "\n")
