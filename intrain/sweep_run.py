"""A sweep's points as Dask tasks, and the table of their results.

:func:`open_client` connects to a Dask cluster: a ``LocalCluster`` of one single-threaded worker
process per CPU core (or ``workers``), or an existing cluster at a scheduler's address.
:func:`run_sweep` submits every job of the points (:class:`intrain.sweep.Point`): one task per
distinct build and per distinct training run, so points that differ only in what a build
depends on share their training run. Each task returns its report or its error (a failed point
never stops the sweep). As tasks finish, the client keeps their reports in ``OUT/reports/``
(the resume marker: a re-run skips every job whose report is there) and rewrites the table,
``OUT/sweep.json`` and ``OUT/sweep.csv``, one row per finished point.

The workers build in ``OUT/builds/`` unless ``build_dir`` says otherwise: on a remote cluster
it must be a folder the workers can write (a shared file system keeps the bitstreams beside
the table). Workers need intrain and its tools installed, as the client does.

Effective GOPS (a build's figure): ``2 x`` the MACs the array performs in a training step of
a full batch ``/`` the step's cycles (:meth:`~intrain.hdl.engine.Engine.train_macs`,
:meth:`~intrain.hdl.engine.Engine.train_cycles`, the cycle model the simulations check) ``x``
the Fmax: peak GOPS times the MAC utilization of training.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from intrain.errors import ConfigError, IntrainError

__all__ = ["COLUMNS", "SweepResult", "open_client", "default_workers", "run_sweep",
           "build_job", "train_job", "summary_text"]

#: The columns of the table, in order (``sweep.csv``; ``sweep.json`` rows have the same keys).
COLUMNS = (
    "point", "status", "job", "board", "layers", "array", "macs", "bits", "batch", "clock_mhz",
    "seed", "lut", "lut_available", "ff", "dsp", "bram", "fmax_mhz", "timing_met",
    "peak_gops_at_fmax", "mac_utilization", "effective_gops", "pareto", "build_seconds",
    "backend", "test_accuracy", "float_test_accuracy", "train_seconds", "samples_per_second",
    "steps", "sim_mac_utilization", "error", "build_report", "train_report",
)


def default_workers() -> int:
    """One worker per CPU core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None, *,
                quiet: bool = False, timeout: float = 10):
    """A Dask client: on the cluster at ``scheduler`` (``tcp://HOST:PORT``), else on a new
    ``LocalCluster`` of ``workers`` single-threaded processes (default: one per core), closed
    on exit. An unreachable scheduler, or one without workers after ``timeout`` seconds, is a
    :class:`~intrain.errors.ConfigError`."""
    import dask
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    else:
        # One task per worker at a time: a long build never waits behind another queued on the
        # same worker while a second worker is idle.
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                                   processes=True, dashboard_address=":0",
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        if scheduler:
            _wait_for_workers(client, scheduler, timeout)
        if not quiet:
            n = len(client.scheduler_info(n_workers=-1)["workers"])
            where = scheduler or "a local cluster"
            print(f"intrain: sweep: {n} worker{'s' * (n != 1)} on {where}", file=sys.stderr)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _wait_for_workers(client, scheduler, timeout):
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        raise ConfigError(f"the Dask scheduler at {scheduler} has no workers (waited "
                          f"{timeout:g} s)") from None


# -- the tasks (run on the workers) -----------------------------------------------------------
def _error_text(e: BaseException) -> str:
    return str(e) if isinstance(e, IntrainError) else f"{type(e).__name__}: {e}"


def _timed(fn, *args) -> dict:
    """``{"report": fn(*args), "seconds": ...}``, or ``{"error": message, "seconds": ...}``."""
    t0 = time.monotonic()
    try:
        out = {"report": fn(*args)}
    except Exception as e:  # any failure is the point's result, never the sweep's end
        out = {"error": _error_text(e)}
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def _training_step(config, dsp) -> dict:
    """The engine's training step of a full batch by its cycle model: cycles, MAC-cycles and
    their utilization."""
    from intrain.hdl.engine import Engine

    engine = Engine(config, dsp=dsp)
    engine._MustUse__silence = True
    batch = config.batch_size
    cycles, macs = engine.train_cycles(batch), engine.train_macs(batch)
    pes = config.array_rows * config.array_cols
    return {"batch": batch, "cycles": cycles, "mac_cycles": macs,
            "mac_utilization": macs / (pes * cycles)}


def _build(board, config, clock, seed, out_dir, options) -> dict:
    from intrain.boards.build import build_board

    report = build_board(board, config, out_dir=out_dir, clock_mhz=clock, seed=seed,
                         progress=False, **options)
    report["training_step"] = _training_step(config, report["dsp_mode"])
    return report


def build_job(board, config, clock, seed, out_dir, options) -> dict:
    """A worker's build of one point (see :func:`intrain.boards.build.build_board`); returns
    ``{"report": ..., "seconds": ...}`` or ``{"error": ..., "seconds": ...}``."""
    return _timed(_build, board, config, clock, seed, out_dir, options)


def _train(config, options) -> dict:
    if options["backend"] == "rtl":
        from intrain.sim.engine_run import run_engine

        return run_engine(config, data=options["data"], sim=options["sim"],
                          steps=options["steps"], float_baseline=options["float_baseline"],
                          progress=False, evaluate_on_rtl=options["evaluate_on_rtl"],
                          check_every=options.get("check_every", 0),
                          harness=options.get("harness", "auto"))
    from intrain.data import load_dataset
    from intrain.train import train

    data = load_dataset(options["data"])
    return train(config, data, float_baseline=options["float_baseline"], progress=False,
                 max_steps=options["steps"]).to_dict()


def train_job(config, options) -> dict:
    """A worker's training run of one point (``options``: :meth:`TrainOptions.to_dict`);
    returns ``{"report": ..., "seconds": ...}`` or ``{"error": ..., "seconds": ...}``."""
    return _timed(_train, config, options)


# -- the sweep (on the client) ----------------------------------------------------------------
@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the table's rows, every job's record (``report`` or
    ``error``, ``seconds``, ``resumed``) by key, the points' job keys, the counts and the files
    written."""

    rows: list[dict]
    records: dict[str, dict]
    keys: dict[int, dict[str, str]]
    ran: int = 0
    resumed: int = 0
    failed: int = 0
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)


def _jobs(points, build_dir: Path, build_options: dict):
    """The distinct tasks of ``points`` (key -> (function, arguments, priority)) and each
    point's keys by kind. Builds go first, larger designs before smaller ones, so the last
    tasks to finish are short."""
    from intrain.boards.registry import estimate_luts, get_board

    jobs, keys = {}, {}
    for p in points:
        keys[p.index] = {}
        if "build" in p.jobs:
            k = p.build_key(build_options)
            luts = estimate_luts(p.config, get_board(p.board).family)
            jobs.setdefault(k, (build_job, (p.board, p.config, p.clock, p.seed,
                                            str(build_dir / k), build_options), 1 + luts))
            keys[p.index]["build"] = k
        if "train" in p.jobs:
            k = p.train_key()
            jobs.setdefault(k, (train_job, (p.config, p.train.to_dict()), 0))
            keys[p.index]["train"] = k
    return jobs, keys


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def _resumed(reports: Path, keys) -> dict[str, dict]:
    found = {}
    for k in keys:
        path = reports / f"{k}.json"
        try:
            found[k] = {"report": json.loads(path.read_text()), "resumed": True, "seconds": 0.0}
        except (OSError, json.JSONDecodeError):
            continue
    return found


def run_sweep(points, out, client, *, progress: bool = True, build_dir=None,
              build_options: dict | None = None) -> SweepResult:
    """Run ``points`` (a list of :class:`~intrain.sweep.Point`) on ``client``'s cluster; write
    ``out/sweep.json``, ``out/sweep.csv`` and ``out/reports/`` as the tasks finish and return
    a :class:`SweepResult`. ``build_options`` go to every build
    (:func:`~intrain.boards.build.build_board`'s keywords, e.g. ``check=False``)."""
    from distributed import as_completed
    from tqdm import tqdm

    t0 = time.monotonic()
    out = Path(out)
    reports = out / "reports"
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the sweep folder {out}: {e.strerror or e}") from None
    build_dir = Path(build_dir or out / "builds").absolute()
    build_options = dict(build_options or {})
    jobs, keys = _jobs(points, build_dir, build_options)
    records = _resumed(reports, jobs)
    # Submitted in the order of their priority: a task submitted while a worker is idle starts
    # there at once, before a later one of higher priority reaches the scheduler.
    todo = sorted((k for k in jobs if k not in records), key=lambda k: -jobs[k][2])
    result = SweepResult(rows=[], records=records, keys=keys, resumed=len(records),
                         files=[out / "sweep.json", out / "sweep.csv"])
    if progress:
        before = f", {len(records)} done before (in {reports})" if records else ""
        print(f"intrain: sweep: {len(points)} points, {len(jobs)} jobs{before}", file=sys.stderr)
    _write_table(out, points, result)
    futures = [client.submit(jobs[k][0], *jobs[k][1], key=k, pure=False, priority=jobs[k][2])
               for k in todo]
    bar = tqdm(total=len(todo), desc="sweep", unit="job", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    try:
        for future in as_completed(futures):
            _finish(future, records, reports, result, points, bar)
            _write_table(out, points, result)
    finally:
        bar.close()
        client.cancel([f for f in futures if not f.done()])
    result.seconds = round(time.monotonic() - t0, 1)
    return result


def _finish(future, records, reports, result, points, bar) -> None:
    """Record one finished task: keep its report, or say which points failed and why."""
    key = future.key
    try:
        record = future.result()
    except Exception as e:  # the worker died, or could not run the task at all
        record = {"error": f"the task did not run on its worker: {_error_text(e)}",
                  "seconds": None}
    future.release()
    records[key] = record
    result.ran += 1
    if "report" in record:
        _write_json(reports / f"{key}.json", record["report"])
    else:
        result.failed += 1
        which = [p.describe() for p in points if key in result.keys[p.index].values()]
        first = record["error"].splitlines()[0] if record["error"] else "failed"
        bar.write(f"intrain: sweep: {'; '.join(which)}: {first}", file=sys.stderr)
    bar.set_postfix(failed=result.failed, refresh=False)
    bar.update(1)


# -- the table --------------------------------------------------------------------------------
def _build_columns(report: dict, seconds) -> dict:
    u = report.get("utilization", {})
    fmax, step = report.get("fmax_mhz"), report.get("training_step", {})
    util = step.get("mac_utilization")
    peak = None if fmax is None else 2 * report["macs"] * fmax / 1000
    return {
        "lut": u.get("lut", {}).get("used"), "lut_available": u.get("lut", {}).get("available"),
        "ff": u.get("ff", {}).get("used"), "dsp": u.get("dsp", {}).get("used"),
        "bram": u.get("bram", {}).get("used"), "fmax_mhz": fmax,
        "clock_mhz": report.get("clock_mhz"), "timing_met": report.get("timing_met"),
        "peak_gops_at_fmax": None if peak is None else round(peak, 3),
        "mac_utilization": None if util is None else round(util, 4),
        "effective_gops": None if peak is None or util is None else round(peak * util, 3),
        "build_seconds": report.get("build_seconds", seconds),
    }


def _train_columns(report: dict) -> dict:
    return {k: report.get(k) for k in ("backend", "test_accuracy", "float_test_accuracy",
                                       "train_seconds", "samples_per_second", "steps")} | {
        "sim_mac_utilization": report.get("mac_utilization")}


def _row(point, records: dict, keys: dict[str, str], reports: Path) -> dict:
    row = {"point": point.index, "job": "+".join(point.jobs), "board": point.board,
           "layers": point.layers, "array": point.array,
           "macs": point.config.array_rows * point.config.array_cols, "bits": point.bits,
           "batch": point.config.batch_size}
    if "build" in point.jobs:
        row["clock_mhz"], row["seed"] = point.target_mhz(), point.seed
    errors = []
    for kind, key in keys.items():
        rec = records[key]
        if "error" in rec:
            errors.append(f"{kind}: {rec['error']}")
            continue
        row.update(_build_columns(rec["report"], rec["seconds"]) if kind == "build"
                   else _train_columns(rec["report"]))
        row[f"{kind}_report"] = str(reports / f"{key}.json")
    resumed = all(records[k].get("resumed") for k in keys.values())
    row["status"] = "failed" if errors else "resumed" if resumed else "done"
    row["error"] = "; ".join(errors) or None
    return row


def _write_table(out: Path, points, result: SweepResult) -> None:
    """Rewrite ``sweep.json`` and ``sweep.csv`` with the points finished so far."""
    from intrain.sweep import pareto

    rows = [_row(p, result.records, result.keys[p.index], out / "reports") for p in points
            if all(k in result.records for k in result.keys[p.index].values())]
    front = pareto(rows)
    for r in rows:
        r["pareto"] = r["point"] in front if r.get("effective_gops") is not None else None
    result.rows = [{c: r.get(c) for c in COLUMNS} for r in rows]
    _write_json(out / "sweep.json", {"points": len(points), "finished": len(rows),
                                     "columns": list(COLUMNS), "rows": result.rows})
    tmp = out / "sweep.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows({k: "" if v is None else v for k, v in r.items()} for r in result.rows)
    tmp.replace(out / "sweep.csv")


def summary_text(result: SweepResult) -> str:
    """The table in short: one line per point, then the counts."""
    head = ("point", "board", "network", "array", "bits", "batch", "MHz", "Fmax", "LUT",
            "eff GOPS", "accuracy", "status")
    lines = [head]
    for r in result.rows:
        def num(key, fmt, r=r):
            return "-" if r.get(key) is None else format(r[key], fmt)
        acc = "-" if r.get("test_accuracy") is None else f"{r['test_accuracy']:.2%}"
        lines.append((str(r["point"]), r["board"] or "-", r["layers"], r["array"], r["bits"],
                      str(r["batch"]), num("clock_mhz", "g"), num("fmax_mhz", ".1f"),
                      num("lut", ","), num("effective_gops", ".3f"), acc,
                      r["status"] + (" *" if r.get("pareto") else "")))
    w = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w[i]) if i in (1, 2, 4, 11) else c.rjust(w[i])
                      for i, c in enumerate(line)).rstrip() for line in lines]
    text += _seed_lines(result.rows)
    n_done = sum(r["status"] != "failed" for r in result.rows)
    text.append(f"{len(result.rows)} points: {n_done} done ({result.resumed} jobs resumed), "
                f"{len(result.rows) - n_done} failed; {result.ran} jobs ran in "
                f"{result.seconds:.1f} s" + ("; * on the Pareto front (effective GOPS vs LUTs)"
                                             if any(r.get("pareto") for r in result.rows)
                                             else ""))
    return "\n".join(text)


def _seed_lines(rows) -> list[str]:
    """Best and median Fmax of each design built with more than one placer seed."""
    import statistics

    groups: dict[tuple, list] = {}
    for r in rows:
        if r.get("fmax_mhz") is not None:
            key = (r["board"], r["layers"], r["array"], r["bits"], r["batch"], r["clock_mhz"])
            groups.setdefault(key, []).append(r)
    lines = []
    for (board, layers, array, bits, batch, clock), mine in groups.items():
        if len({r["seed"] for r in mine}) > 1:
            best = max(mine, key=lambda r: r["fmax_mhz"])
            median = statistics.median(r["fmax_mhz"] for r in mine)
            lines.append(f"{board} {layers} {array} {bits} batch {batch} at {clock:g} MHz, "
                         f"{len(mine)} seeds: best Fmax {best['fmax_mhz']:.2f} MHz (seed "
                         f"{best['seed']}), median {median:.2f} MHz")
    return lines
