"""One log line per event on stderr: text for a terminal, JSON lines for files under supervisord.

Text: time, level, process[pid], logger, message. JSON: {"ts", "level", "stage", "pid", "logger",
"msg"} plus "exc" for a traceback. Secrets are redacted from every record (processes/redaction.py).
"""

from __future__ import annotations

import json
import logging
import sys
import time

from processes.redaction import RedactSecrets

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s"


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "stage": record.processName, "pid": record.process,
            "logger": record.name, "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, process_name: str, fmt: str = "text") -> None:
    import multiprocessing

    multiprocessing.current_process().name = process_name
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(RedactSecrets.from_environment())
    root.addHandler(handler)
    root.setLevel(level)
