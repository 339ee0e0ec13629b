"""Runs the benchmark scripts in report order, each in its own process, then the report.

``--stale`` runs only the sections whose code changed since their last run (as the
report marks them), so an interrupted or partial regeneration can be finished without
rerunning what is current; defaults.py then reruns only its stale models (``--update``). A failing script stops the run (its exit status is returned).

Usage: python bench/run.py [--stale] [--dry-run]   (`make bench` runs it without options)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import RESULTS
from report import SCRIPTS, current, script, up_to_date

# Options a script runs with in `make bench`.
ARGUMENTS = {
    "ials_quality": ["--large"],
    "sequences_ml_100k": ["--dataset", "movielens-100k"],
    "sequences_ml_latest_small": ["--dataset", "movielens-latest-small"],
    "approx_index_build": ["--items", "10000000", "--build-only"],
}


def stale(name: str) -> bool:
    """Whether a section has no results yet or its code changed since its run."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return True
    return not up_to_date(name, json.loads(path.read_text()))


def arguments(name: str, only_stale: bool) -> list[str]:
    """The options a script runs with: defaults.py, whose entries each keep the commit they
    ran at, reruns only its stale models (``--update``) when some of them are current."""
    args = list(ARGUMENTS.get(name, []))
    path = RESULTS / f"{name}.json"
    if not (only_stale and name == "defaults" and path.exists()):
        return args
    result = json.loads(path.read_text())
    entries = result.get("results", {})
    models = [m for m, e in entries.items() if not current(name, e.get("commit", result["machine"]["commit"]), {m: e})]
    return args if not models or len(models) == len(entries) else [*args, "--models", ",".join(models), "--update"]


def last_minutes(name: str) -> float | None:
    """How long a section's last run took (its results record it), or None."""
    path = RESULTS / f"{name}.json"
    seconds = json.loads(path.read_text())["machine"].get("run_seconds") if path.exists() else None
    return None if seconds is None else seconds / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stale", action="store_true", help="only the sections whose code changed since their run")
    parser.add_argument("--dry-run", action="store_true", help="list the scripts it would run, with their last run times")
    args = parser.parse_args()
    todo = [name for name in SCRIPTS if not args.stale or stale(name)]
    print(f"{len(todo)} of {len(SCRIPTS)} sections to run: {', '.join(todo) or 'none'}", flush=True)
    if args.dry_run:
        minutes = {name: last_minutes(name) for name in todo}
        for name in todo:
            print(f"  {' '.join([f'{script(name)}.py', *arguments(name, args.stale)])}: "
                  + ("no timed run yet" if minutes[name] is None else f"{minutes[name]:.0f} min last time"))
        known = [m for m in minutes.values() if m is not None]
        print(f"about {sum(known):.0f} min by the last runs' times ({len(known)} of {len(todo)} timed)")
        return
    for i, name in enumerate(todo, 1):
        command = [sys.executable, f"{script(name)}.py", *arguments(name, args.stale)]
        print(f"[{i}/{len(todo)}] {' '.join(command[1:])} ({time.strftime('%H:%M:%S')})", flush=True)
        started = time.perf_counter()
        code = subprocess.run(command, cwd=RESULTS.parent).returncode
        if code:
            print(f"{name}.py failed (exit {code}); stopping", file=sys.stderr)
            sys.exit(code)
        print(f"[{i}/{len(todo)}] {name} done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    sys.exit(subprocess.run([sys.executable, "report.py"], cwd=RESULTS.parent).returncode)


if __name__ == "__main__":
    main()
