"""Run as a child process with TRACKIO_DIR set: log runs with trackio, dump what it reads back.

Usage: python trackio_writer.py SPEC.json OUT.json (see import_helpers.write_trackio).
"""

import json
import sys
from pathlib import Path

import trackio
from trackio.sqlite_storage import SQLiteStorage

spec = json.loads(Path(sys.argv[1]).read_text())
logs = {}
for run in spec:
    trackio.init(project=run["project"], name=run["name"], config=run.get("config") or {})
    for metrics, step in run["logs"]:
        trackio.log(metrics, step=step)
    trackio.finish()
for run in spec:
    read = SQLiteStorage.get_logs(run["project"], run["name"])
    logs[run["name"]] = [{**row, "timestamp": str(row["timestamp"])} for row in read]
with open(sys.argv[2], "w") as handle:
    json.dump(logs, handle)
