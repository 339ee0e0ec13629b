"""Gathers every benchmark's results into bench/RESULTS.md and bench/results.json.

Reads what the scripts wrote to bench/results/ and copies it: each section keeps the
machine, versions, commit, date and seed of the run that produced it (nothing is
recomputed or edited here). A summary of the targets is derived from the JSON figures,
and each target's figure is compared with the last commit's bench/results.json: a move
beyond noise without a reason in bench/drift_explained.json fails the report, as a
MISSED target does.

Usage: python bench/report.py   (run by `make bench` after the scripts)
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys

import highlights
from common import RESULTS, machine

BENCH = RESULTS.parent
# Report order: quality first, then speed.
SCRIPTS = ("mf_quality", "ncf_quality", "content_quality", "ials_quality", "train_speed", "scaling", "eval_speed",
           "serving_speed", "gpu_serving", "large_catalogue", "load_speed", "verdicts", "music", "streaming", "parameter_servers", "defaults",
           "sequences_ml_100k", "sequences_ml_latest_small", "sequence_scaling", "approx_index", "approx_index_build")  # fmt: skip
# Sections written by a script of another name (one run per dataset).
SCRIPT_OF = {"sequences_ml_100k": "sequences", "sequences_ml_latest_small": "sequences",
             "approx_index_build": "approx_index"}


def script(name: str) -> str:
    """The bench/ script (without .py) that writes section ``name``."""
    return SCRIPT_OF.get(name, name)


def _targets(results: dict) -> list[tuple[str, str, str, str]]:
    """(target, figure, verdict, source) rows for the targets the issues set."""
    rows = []

    def add(what: str, value: float | None, ok: bool | None, source: str, fmt: str = "{:.4f}") -> None:
        if value is None:
            rows.append((what, "not measured", "-", source))
        else:
            rows.append((what, fmt.format(value), "met" if ok else "MISSED", source))

    def bounded(what: str, value: float, low: float, high: float, ok: bool, source: str) -> None:
        """A target judged on its 95% interval: met only when the whole interval clears the bar."""
        rows.append((what, f"{value:.4f} [{low:.4f}, {high:.4f}]", "met" if ok else "MISSED", source))

    mf = results.get("mf_quality", {})
    pooled = dict(mf.get("pooled", {}))
    content_pooled = results.get("content_quality", {}).get("results", {}).get("ratings", {}).get("pooled", {})
    if "content_rating" in content_pooled:
        pooled["content_rating"] = content_pooled["content_rating"]
    if "biased_mf" in pooled:
        p = pooled["biased_mf"]
        bounded("biased_mf RMSE u1..u5 pooled <= 0.905 (95% interval over ratings)", p["rmse"], p["low"], p["high"],
                p["high"] <= 0.905, "mf_quality")  # fmt: skip
        ours = {k: v for k, v in pooled.items() if not k.startswith("surprise")}
        best = min(ours, key=lambda k: ours[k]["rmse"])
        p = ours[best]
        bounded(f"best factorization model RMSE u1..u5 pooled <= 0.895 ({best}; 95% interval over ratings)",
                p["rmse"], p["low"], p["high"], p["high"] <= 0.895, "mf_quality, content_quality")  # fmt: skip
    paired = {(r["first"], r["second"], r["metric"]): r for r in results.get("verdicts", {}).get("results", [])}
    verdict = paired.get(("implicit_mf (tuned)", "implicit ALS", "recall@10"))
    if verdict:  # met only when the paired interval clears zero; a tie is not a win
        rows.append((
            "implicit_mf R@10 > implicit ALS, both tuned alike on validation (ML-100K leave-last-out, 95% paired "
            "interval)",
            highlights.interval(verdict),
            "met" if verdict["verdict"] == "better" else "MISSED",
            "verdicts",
        ))  # fmt: skip
    rated = results.get("verdicts", {}).get("ratings") or {}
    for peer, v in rated.get("against", {"surprise SVD": rated} if rated else {}).items():
        rows.append((
            f"biased_mf RMSE < {peer.replace('surprise', 'Surprise')}, both tuned alike on validation (ML-100K "
            "u1..u5 pooled, 95% paired interval)",
            highlights.interval(v),
            "met" if v["verdict"] == "better" else "MISSED",
            "verdicts",
        ))  # fmt: skip
    for model, checked in results.get("defaults", {}).get("results", {}).items():
        if "beat_default" not in checked:  # results from before the paired verdicts
            continue
        beaten = checked["beat_default"]
        rows.append((
            f"{model} default holds on validation across datasets (no one-field neighbour better on a dataset and "
            "worse on none, 95% paired intervals)",
            f"beaten by {', '.join(beaten)}" if beaten else f"none of {len(checked['validation']) - 1} beat it",
            "MISSED" if beaten else "met",
            "defaults",
        ))  # fmt: skip
    ncf = results.get("ncf_quality", {}).get("results", {})
    if ncf:
        ml = ncf["ml-100k"]
        best = max(("gmf", "mlp", "neumf", "neumf (pre-trained)"), key=lambda n: ml[n]["recall@10"])
        for label, row in (("two_tower", ml["two_tower"]), (f"best NCF ({best})", ml[best])):
            if "recall@10_low" in row:
                bounded(f"{label} R@10 >= 0.11 (ML-100K leave-last-out; 95% interval over users)", row["recall@10"],
                        row["recall@10_low"], row["recall@10_high"], row["recall@10_low"] >= 0.11, "ncf_quality")  # fmt: skip
        top = ncf["tfrs-setting"]["two_tower"]
        if "top100_low" in top:
            bounded("two_tower top-100 accuracy >= 0.31 (TFRS setting; 95% interval over test interactions)",
                    top["top100"], top["top100_low"], top["top100_high"], top["top100_low"] >= 0.31, "ncf_quality")  # fmt: skip
    content = results.get("content_quality", {}).get("results", {})
    for dataset, models in content.get("cold", {}).items():
        if "verdict" not in models:  # results from before the non-oracle baselines
            continue
        v = models["verdict"]  # met only when the interval's low end clears 1.5x the baseline
        rows.append((
            f"cold start {dataset}: best text model R@20 >= 1.5x the best non-oracle baseline ({v['model']} vs "
            f"{v['baseline']}, 95% paired interval)",
            f"{v['a'] / max(v['b'], 1e-12):.2f}x, {v['difference']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}]",
            "met" if v["low"] >= 0.5 * v["b"] else "MISSED",
            "content_quality",
        ))  # fmt: skip
    for dataset, models in content.get("warm", {}).items():
        v = models.get("verdict")
        if v:  # met only when the paired interval's low end is at or above 0
            rows.append((f"warm {dataset}: hybrid R@10 minus two_tower R@10 >= 0 (95% paired interval)",
                         highlights.interval(v), "met" if v["low"] >= 0 else "MISSED", "content_quality"))  # fmt: skip
    speed = results.get("train_speed", {}).get("results", {})
    reference = speed.get("TFRS tutorial, metrics off", {})
    for name in ("two_tower", "implicit_mf"):
        row = speed.get(f"tfrec {name}")
        if row and "fit_ratio_same_batch" in row:
            ratio = min(row["steady_ratio_same_batch"], row["fit_ratio_same_batch"])
            ok = ratio >= 3 and row["top100"] >= reference.get("top100", 1)
            add(
                f"{name} training speed >= 3x the TFRS tutorial (metrics off) at the same batch size, "
                "steady and whole-fit (the lower shown), equal or better top-100",
                ratio,
                ok,
                "train_speed",
                "{:.2f}x",
            )
    serving = results.get("serving_speed", {}).get("results", {})
    small, large = serving.get("3,706 items", {}), serving.get("1,000,000 items", {})
    if "p50_over_floor" in small:
        add("recommend batch-1 p50 <= 1.5x the session floor at 3,706 items (C API)", small["p50_over_floor"],
            small["p50_over_floor"] <= 1.5, "serving_speed", "{:.2f}x")  # fmt: skip
    if "p50_over_numpy" in large:
        add("recommend batch-1 p50 <= 1.2x NumPy brute force at 1M items (C API)", large["p50_over_numpy"],
            large["p50_over_numpy"] <= 1.2, "serving_speed", "{:.2f}x")  # fmt: skip
    for label, row in serving.items():
        if "numpy_over_batch256" in row:
            add(f"recommend at batch 256 >= 3x faster than NumPy ({label}, C API)", row["numpy_over_batch256"],
                row["numpy_over_batch256"] >= 3.0, "serving_speed", "{:.2f}x")  # fmt: skip
        if "worst_first_over_median" in row:
            add(f"no request shape's first call after load > 3x its median ({label})", row["worst_first_over_median"],
                row["worst_first_over_median"] <= 3.0, "serving_speed", "{:.2f}x")  # fmt: skip
    scaling = results.get("scaling", {}).get("results", {})
    if len(scaling) >= 2:
        sizes = sorted(scaling, key=int)
        small, large = scaling[sizes[-2]], scaling[sizes[-1]]
        for name in large["models"]:
            if "second_epoch_s" not in large["models"][name]:
                continue
            per_small = small["models"][name]["second_epoch_s"] / small["train_examples"]
            per_large = large["models"][name]["second_epoch_s"] / large["train_examples"]
            add(
                f"{name} training time linear in interactions (second epoch's seconds per example, "
                f"{int(sizes[-1]):,} / {int(sizes[-2]):,} <= 1.5)",
                per_large / per_small,
                per_large / per_small <= 1.5,
                "scaling",
                "{:.2f}x",  # a timing ratio: its drift is judged as a speed figure's, not a quality one's
            )
    ials = results.get("ials_quality", {})
    for dataset in ("ml-100k", "ml-latest-small"):
        if "low" in ials.get(dataset, {}):  # results from before the paired interval have no row
            q = ials[dataset]
            rows.append((
                f"ials R@10 tie or better vs implicit ALS tuned alike ({dataset} leave-last-out, 95% paired interval)",
                highlights.interval(q),
                "met" if q["verdict"] in ("tie", "better") else "MISSED",
                "ials_quality",
            ))
    for size, bound in ((10**6, 1.5), (10**7, 1.5)):
        speed = ials.get(f"speed_{size}")
        if speed:
            ratio = speed["tfrec ials"]["seconds_15_sweeps"] / speed["implicit ALS"]["seconds_15_sweeps"]
            add(f"ials 15-sweep wall time <= {bound}x implicit ALS at {size:,} interactions", ratio, ratio <= bound,
                "ials_quality", "{:.2f}x")  # fmt: skip
    for what, verdict, figure in results.get("music", {}).get("verdicts", []):
        rows.append((f"music (Last.fm-2k + audio): {what}", figure, verdict, "music"))
    for section, dataset in (("sequences_ml_100k", "ML-100K"), ("sequences_ml_latest_small", "ml-latest-small")):
        seq = results.get(section)
        if not seq:
            continue
        for first, difference, interval, verdict in seq["comparisons"]:
            other = first.removeprefix("sasrec - ")
            if other in ("item_transitions", "implicit_mf", "two_tower", "ials", "implicit ALS"):
                rows.append((f"{dataset} leave-last-out: sasrec better than {other} (R@10, 95% paired interval)",
                             f"{difference:+.4f} {interval}", "met" if verdict == "better" else "MISSED", section))  # fmt: skip
        ratio = seq["ratio_to_order_blind"]
        add(f"{dataset}: sasrec R@10 >= 1.5x the best order-blind tfrec model", ratio, ratio >= 1.5, section, "{:.2f}x")
        if "serving_ratio" in seq:
            add(f"{dataset}: recommend_from_history p50 <= 1.5x recommend's (batch 1)", seq["serving_ratio"],
                seq["serving_ratio"] <= 1.5, section, "{:.2f}x")  # fmt: skip
        if section == "sequences_ml_100k":
            seconds = seq["models"]["sasrec"]["train_seconds"]
            add("ML-100K: sasrec trains to its chosen quality in <= 60 s", seconds, seconds <= 60, section, "{:.0f} s")
    approx = results.get("approx_index", {}).get("results", {})
    if "p50_ms" in approx.get("tfrec approx", {}):
        ours, exact = approx["tfrec approx"], approx["tfrec exact"]
        add("approximate index recall@10 vs exact >= 0.95", ours["recall@10"], ours["recall@10"] >= 0.95, "approx_index")
        add("approximate index batch-1 p50 >= 10x faster than exact", exact["p50_ms"] / ours["p50_ms"],
            exact["p50_ms"] / ours["p50_ms"] >= 10, "approx_index", "{:.1f}x")  # fmt: skip
        add("approximate index batch-256 p50 >= 5x faster than exact", exact["batch256_p50_ms"] / ours["batch256_p50_ms"],
            exact["batch256_p50_ms"] / ours["batch256_p50_ms"] >= 5, "approx_index", "{:.1f}x")  # fmt: skip
        if "faiss IVF-Flat" in approx:
            ratio = ours["p50_ms"] / approx["faiss IVF-Flat"]["p50_ms"]
            add("approximate index batch-1 p50 within 2x of faiss IVF-Flat", ratio, ratio <= 2, "approx_index", "{:.1f}x")
        add("approximate index build < 60 s", ours["index"]["build_seconds"], ours["index"]["build_seconds"] < 60,
            "approx_index", "{:.1f} s")  # fmt: skip
    large = results.get("approx_index_build")
    if large:
        best = max(float(row[2]) for row in large["rows"])
        add(f"approximate index at {large['items']:,} items builds in < 5 min", large["build_s"], large["build_s"] < 300,
            "approx_index_build", "{:.0f} s")  # fmt: skip
        add(f"approximate index at {large['items']:,} items: recall@10 >= 0.95 (probed search)", best, best >= 0.95,
            "approx_index_build")  # fmt: skip
    scaling = results.get("sequence_scaling")
    if scaling:
        ratio, expected = scaling["ratio"], scaling["expected"]
        add(f"sasrec epoch time linear in interactions ({expected:.0f}x data: within 20% of {expected:.0f}x)", ratio,
            abs(ratio / expected - 1) <= 0.2, "sequence_scaling", "{:.2f}x")  # fmt: skip
    for section in ("streaming", "parameter_servers"):
        for what, figure, verdict in results.get(section, {}).get("verdicts", []):
            if verdict != "-":
                rows.append((f"{section.replace('_', ' ')}: {what}", figure, verdict, section))
    return rows


# Drift beyond these is not noise: quality figures (at most 1.5, no unit) by more than 0.02
# (the CI quality tier's margin), anything else (seconds, ratios, ms) by more than 30%.
QUALITY_DRIFT, OTHER_DRIFT = 0.02, 0.30
EXPLAINED = BENCH / "drift_explained.json"


def _number(figure: str) -> float | None:
    found = re.search(r"[-+]?\d[\d,]*\.?\d*", figure)
    return None if found is None else float(found.group().replace(",", ""))


def _committed() -> dict:
    """The results in the last commit's bench/results.json (rerunning this report does not
    make a drift go away), or the file on disk outside a git checkout."""
    shown = subprocess.run(
        ["git", "show", "HEAD:bench/results.json"], cwd=BENCH, capture_output=True, text=True, check=False
    )
    if shown.returncode == 0:
        return json.loads(shown.stdout)["results"]
    path = BENCH / "results.json"
    return json.loads(path.read_text())["results"] if path.exists() else {}


def drift(before: dict, after: dict, explained: dict) -> list[tuple[str, str, str, str]]:
    """(target, before, after, explanation or "UNEXPLAINED") for each target whose figure
    moved beyond noise between the committed results and these."""
    old = {row[0]: row[1] for row in _targets(before)}
    moved = []
    for what, figure, _, _ in _targets(after):
        if what not in old:
            continue
        a, b = _number(old[what]), _number(figure)
        if a is None or b is None or old[what] == figure:
            continue
        quality = max(abs(a), abs(b)) <= 1.5 and not figure.rstrip().endswith(("x", "s", "ms", "GiB"))
        if (abs(b - a) > QUALITY_DRIFT) if quality else (abs(b - a) > OTHER_DRIFT * max(abs(a), 1e-12)):
            note = explained.get(what, {})
            reason = note.get("reason") if note.get("figure") == figure else None
            moved.append((what, old[what], figure, reason or "UNEXPLAINED"))
    return moved


@functools.cache
def _model_modules() -> dict[str, set[str]]:
    """tfrec/models/<file>.py -> the registered models whose class is defined in it or
    inherits from a class defined there."""
    import inspect
    from pathlib import Path

    from tfrec.models import entry, names

    affected: dict[str, set[str]] = {}
    for name in names():
        for cls in [*entry(name).model_cls.__mro__, *entry(name).config_cls.__mro__]:
            module = inspect.getmodule(cls)
            path = Path(module.__file__).resolve() if module and getattr(module, "__file__", None) else None
            if path and path.parent == BENCH.parent / "tfrec" / "models":
                affected.setdefault(f"tfrec/models/{path.name}", set()).add(name)
    return affected


def current(name: str, commit: str, result: dict) -> bool:
    """Whether the code a section ran is unchanged from ``commit`` to the working tree:
    tfrec/, its script, bench/common.py and peers.py. A change confined to model modules
    counts only when one of the models defined there appears in the section's results."""
    if commit.endswith("+changes"):
        return False
    paths = ["tfrec", f"bench/{script(name)}.py", "bench/common.py", "bench/peers.py"]
    changed = subprocess.run(["git", "-C", str(BENCH.parent), "diff", "--name-only", commit, "--", *paths],
                             capture_output=True, text=True).stdout.split()  # fmt: skip
    if not changed:
        return True
    modules = _model_modules()
    if not all(path in modules for path in changed):
        return False
    text = json.dumps(result)
    return not any(f'"{model}' in text or f"{model} " in text for path in changed for model in modules[path])


def commits(result: dict) -> set[str]:
    """The commits a section's figures come from: its run's, and its entries' own where a
    partial rerun (`defaults.py --update`) kept older ones."""
    entries = result.get("results", {})
    own = {e["commit"] for e in entries.values() if isinstance(e, dict) and "commit" in e} if isinstance(entries, dict) else set()
    return {result["machine"]["commit"], *own}


def up_to_date(name: str, result: dict) -> bool:
    """Whether every commit a section's figures come from ran code unchanged since."""
    return all(current(name, c, result) for c in commits(result))


def main() -> None:
    results, sections = {}, []
    for name in SCRIPTS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            sections.append(f"## {name}\n\nNot run yet: `python bench/{script(name)}.py`.\n")
            continue
        results[name] = json.loads(path.read_text())
        body = (RESULTS / f"{name}.md").read_text().strip()
        # One level deeper under this report's headings.
        sections.append("\n".join("#" + line if line.startswith("#") else line for line in body.splitlines()))
    info = machine()
    committed = _committed()
    explained = json.loads(EXPLAINED.read_text()) if EXPLAINED.exists() else {}
    moved = drift(committed, results, explained)
    targets = _targets(results)
    lines = ["| target | figure | verdict | from |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets]
    runs = "\n".join(
        f"- `{name}`: commit {r['machine']['commit']}, {r['machine']['date']}, seed {r.get('seed', '-')}"
        + (f", {r['machine']['run_seconds'] / 60:.0f} min" if "run_seconds" in r["machine"] else "")
        + ("" if up_to_date(name, r) else "; **stale**: its code changed since (rerun it)")
        for name, r in results.items()
    )
    markdown = (
        "# tfrec benchmark results\n\n"
        f"Assembled by `python bench/report.py` on {info['date']} from bench/results/ (each section below is "
        "the output of the script run named in it, copied unchanged; machine-readable: bench/results.json). "
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory']}, Python {info['python']}; "
        f"{', '.join(f'{k} {v}' for k, v in info['versions'].items())}.\n\n"
        "Runs (a section is as old as its commit and is marked stale when tfrec/, its script or the helpers it "
        "imports changed since, a model's own module counting only where that model is reported; `make bench` "
        "reruns them all):\n\n"
        + runs
        + "\n\n## Targets\n\n"
        + "\n".join(lines)
        + "\n\n## Drift from the previously committed results\n\n"
        + (
            f"Figures that moved by more than {QUALITY_DRIFT} (quality) or {OTHER_DRIFT:.0%} (other) against the "
            "bench/results.json this report replaced; each needs a reason in bench/drift_explained.json "
            "(for that exact figure) or `make bench` fails.\n\n"
            "| target | before | after | explanation |\n|---|---|---|---|\n"
            + "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in moved)
            if moved
            else "None beyond noise.\n"
        )
        + "\n"
        + "\n\n".join(sections)
        + "\n"
    )
    (BENCH / "RESULTS.md").write_text(markdown)
    readme = BENCH.parent / "README.md"
    readme.write_text(highlights.with_table(readme.read_text(), highlights.table(results)))
    (BENCH / "results.json").write_text(json.dumps({"assembled": info, "results": results}, indent=2) + "\n")
    print(markdown)
    missed = [line for line in lines if "| MISSED |" in line]
    unexplained = [row for row in moved if row[3] == "UNEXPLAINED"]
    for what, before, after, _ in unexplained:
        print(f"drift: {what}: {before} -> {after} (explain it in {EXPLAINED.name})", file=sys.stderr)
    if missed:  # `make bench` fails on a missed target (the files above are still written)
        print(f"{len(missed)} target(s) MISSED", file=sys.stderr)
    if missed or unexplained:
        sys.exit(1)


if __name__ == "__main__":
    main()
