"""Importing the code location has no side effects, and each deployment holds what it should.

The import runs in a fresh interpreter with an empty environment (only PATH) in an empty folder, with
``os.environ`` replaced beforehand by a mapping that records every read and who made it: no folder may appear and
none of our modules may read a variable. Loading the definitions is where the environment is read; prod's
definitions load with an empty environment (its ``EnvVar``s resolve when a run starts) and hold none of the
demo-only parts, which the local deployment has.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = [str(REPO / d) for d in ("alpha_assets", "resources", "partitions")]

# Installed before anything else: every read of os.environ (get, [], in, getenv) is recorded with the file and line
# of the first frame outside the standard library.
AUDIT = """
import json, os, sys
reads = []
class Audited(os._Environ):
    def _note(self, key):
        f = sys._getframe(2)
        stdlib = os.path.dirname(os.__file__)
        while f is not None and f.f_code.co_filename.startswith(stdlib) and "-packages" not in f.f_code.co_filename:
            f = f.f_back
        reads.append([key, f.f_code.co_filename if f else "?", f.f_lineno if f else 0])
    def __getitem__(self, key):
        self._note(key)
        return super().__getitem__(key)
    def get(self, key, default=None):
        self._note(key)
        return super().get(key, default)
    def __contains__(self, key):
        self._note(key)
        return super().__contains__(key)
e = os.environ
os.environ = Audited(e._data, e.encodekey, e.decodekey, e.encodevalue, e.decodevalue)
sys.path.insert(0, {repo!r})
import alpha_assets.definitions as location
after_import = list(reads)
result = {{"import_reads": after_import}}
if {load!r}:
    defs = location.build_definitions(deployment_name={load!r})
    defs.validate_loadable(defs)
    result["resources"] = sorted(defs.resources)
    graph = defs.resolve_asset_graph()
    result["checks"] = sorted(k.name for k in graph.asset_check_keys)
    result["assets"] = len(graph.get_all_asset_keys())
    result["load_reads"] = reads[len(after_import):]
result["world_imported"] = any(m == "alpha_world" or m.startswith("alpha_world.") for m in sys.modules)
print("AUDIT " + json.dumps(result))
"""


def _run(tmp_path: Path, load: str = "") -> dict:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", AUDIT.format(repo=str(REPO), load=load)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("AUDIT "))
    result = json.loads(line.removeprefix("AUDIT "))
    result["cwd_after"] = sorted(p.name for p in cwd.iterdir())
    return result


def _ours(reads: list) -> list:
    return [r for r in reads if any(r[1].startswith(d) for d in OURS)]


def test_importing_the_code_location_creates_nothing_and_reads_no_environment(tmp_path):
    result = _run(tmp_path)
    assert result["cwd_after"] == []  # no .alpha, nothing at all
    assert _ours(result["import_reads"]) == []


def test_the_audit_sees_our_reads_when_the_definitions_load(tmp_path):
    # The same harness records our modules' reads once the definitions load (the trading-day partitions read
    # their first session then): the empty list above is not an audit that cannot fail.
    result = _run(tmp_path, load="prod")
    assert _ours(result["import_reads"]) == []
    assert "ALPHA_PARTITIONS_START" in {key for key, *_ in _ours(result["load_reads"])}


def test_prod_definitions_load_with_an_empty_environment_and_hold_no_demo_parts(tmp_path):
    result = _run(tmp_path, load="prod")
    assert "ground_truth" not in result["resources"]
    assert {"io_manager", "lake_store", "landing", "model_registry", "outbox"} <= set(result["resources"])
    truth_checks = {
        "parking_count_error",
        "tank_fill_error",
        "call_sentiment_tracks_tone",
        "filing_features_track_risk",
        "web_prices_match_site",
    }
    assert not truth_checks & set(result["checks"])
    assert {"parking_counts_valid", "tank_levels_valid"} <= set(result["checks"])  # the real checks stay
    assert result["cwd_after"] == []  # loading prod wrote nothing either
    assert not result["world_imported"]  # the simulator (absent from the image) is never needed to load


def test_local_definitions_hold_the_demo_parts_and_create_no_folder(tmp_path):
    result = _run(tmp_path, load="local")
    assert "ground_truth" in result["resources"]
    assert {
        "parking_count_error",
        "tank_fill_error",
        "call_sentiment_tracks_tone",
        "filing_features_track_risk",
        "web_prices_match_site",
    } <= set(result["checks"])
    assert result["cwd_after"] == []  # ALPHA_HOME defaults to ./.alpha: still nothing made until a write
    assert not result["world_imported"]  # the demo's truth checks read its files, not the simulator
