"""The per-stage metric series exist from a stage's start (value 0), before any flush."""

from __future__ import annotations

import subprocess
import sys

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from processes.metrics import metrics_dir
from tests.conftest import REPO_ROOT

# prometheus_client picks its multiprocess value files when first imported, so the stage runs in a
# process of its own, as it does in the pipeline
STAGE = """
import sys
from mm.config import load_config
from processes.metrics import StageMetrics
config = load_config(sys.argv[1])
StageMetrics(config, "quoter")
"""


def test_a_started_stage_has_zero_traffic_series_before_its_first_flush(make_config):
    config, path = make_config()
    subprocess.run([sys.executable, "-c", STAGE, str(path)], cwd=REPO_ROOT, check=True, timeout=60)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir(config)))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    messages = {(s.labels["stage"], s.labels["direction"]): s.value
                for s in families["mm_stage_messages"].samples if s.name == "mm_stage_messages_total"}
    assert messages == {("quoter", "in"): 0.0, ("quoter", "out"): 0.0}
    errors = [s for s in families["mm_decode_errors"].samples if s.name == "mm_decode_errors_total"]
    assert [(s.labels["stage"], s.value) for s in errors] == [("quoter", 0.0)]
