"""Runs one page's python blocks in one process, in order, sharing one namespace.

Why a process of its own per page: a reader runs a page's examples as one script, so its runs
end, and its writer drains, when that script exits; the test process keeps none of its threads,
environment changes or MLflow state. Blocks arrive on stdin as JSON lines
(``{"code", "where"}``); each answer is one line on stdout starting with :data:`REPLY`. What a
block prints goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback

REPLY = "@@page-python-reply@@ "


def main() -> None:
    replies = sys.stdout
    namespace: dict[str, object] = {"__name__": "__main__"}
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, object] = {"ok": True}
        with contextlib.redirect_stdout(sys.stderr):
            try:
                exec(compile(request["code"], request["where"], "exec"), namespace)
            except BaseException as error:  # noqa: B036 - a block's Ctrl-C example too
                answer = {"ok": False, "error": "".join(
                    traceback.format_exception(type(error), error, error.__traceback__))}
                mlflow = sys.modules.get("mlflow")
                while mlflow is not None and mlflow.active_run() is not None:
                    mlflow.end_run("FAILED")  # as the end of a failing script would
        replies.write(REPLY + json.dumps(answer) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
