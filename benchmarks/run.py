"""Run every skals benchmark and print a table of ratios against references.

Usage::

    python benchmarks/run.py [--scale full|small] [--only prep,fit,...]
        [--grid-iterations 15]

Each measured variant runs in a fresh subprocess (``_tasks.py``), so its
peak resident memory (``ru_maxrss``) is its own; variants alternate round by
round (A B A B ...) so that a burst of load on the machine hits all of them,
and the table reports the median over rounds. The data (``make_sessions``
logs in parquet) is generated once and cached in ``~/.cache/skals-bench/``.
Results are also written as JSON next to the data.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _data import CACHE, ensure  # noqa: E402

GB = 1024**3

#: rounds per step and options, per scale
PLANS = {
    "tiny": {
        "data": "tiny",
        "grid_data": "tiny",
        "prep_rounds": 1,
        "fit_rounds": 1,
        "fit_iterations": 1,
        "rec_repeats": 1,
        "grid_iterations": 1,
        "e2e_iterations": 1,
    },
    "full": {
        "data": "full",
        "grid_data": "grid",
        "prep_rounds": 2,
        "fit_rounds": 2,
        "fit_iterations": 3,
        "rec_repeats": 3,
        "grid_iterations": 3,
        "grid_nocache": False,
        "e2e_iterations": 10,
    },
    "small": {
        "data": "small",
        "grid_data": "grid",
        "prep_rounds": 3,
        "fit_rounds": 3,
        "fit_iterations": 3,
        "rec_repeats": 5,
        "grid_iterations": 3,
        "e2e_iterations": 5,
    },
}


def call(task: str, scale: str, **options) -> dict:
    """Run one task in a subprocess; return its RESULT dict."""
    cmd = [sys.executable, str(HERE / "_tasks.py"), task, scale, json.dumps(options)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        raise RuntimeError(f"{task} {options} failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len("RESULT ") :])
    print(
        f"  {task:9s} {json.dumps(options):45s} {result.get('time', 0):8.2f}s "
        f"(process {time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    return result


def rounds(task, scale, variants, n, **options) -> dict:
    """Variants alternated over ``n`` rounds: {variant: [results]}."""
    out = {v: [] for v in variants}
    for _ in range(n):
        for v in variants:
            out[v].append(call(task, scale, variant=v, **options))
    return out


def med(results, key="time"):
    return float(np.median([r[key] for r in results]))


def peak(results):
    return max(r["maxrss"] for r in results)


def extra(results):
    return max(r["maxrss"] - r["rss_loaded"] for r in results)


class Table:
    def __init__(self):
        self.rows = []

    def add(self, bench, variant, seconds, ref=None, ref_name="", **cols):
        ratio = f"{seconds / ref:.2f}x {ref_name}" if ref else ""
        self.rows.append(
            {
                "benchmark": bench,
                "variant": variant,
                "median s": f"{seconds:.2f}",
                "ratio": ratio,
                **{k: v for k, v in cols.items() if v is not None},
            }
        )

    def markdown(self) -> str:
        cols = ["benchmark", "variant", "median s", "ratio"]
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        lines = [
            "| " + " | ".join(cols) + " |",
            "|" + "---|" * len(cols),
        ]
        for r in self.rows:
            lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
        return "\n".join(lines)


def gb(x):
    return f"{x / GB:.2f}"


def bench_prep(plan, table, raw):
    variants = ["skals", "polars", "pandas", "skals_scan", "polars_scan"]
    res = rounds("prep", plan["data"], variants, plan["prep_rounds"])
    raw["prep"] = res
    digests = {v: {r["digest"] for r in rs} for v, rs in res.items()}
    same = len(set.union(*digests.values())) == 1
    shape = res["skals"][0]["shape"]
    for v in variants:
        ref = "polars_scan" if v.endswith("_scan") else "polars"
        table.add(
            f"1 preprocessing {shape[0]:,}x{shape[1]:,}, nnz "
            f"{res['skals'][0]['nnz']:,}",
            v,
            med(res[v]),
            None if v == ref else med(res[ref]),
            ref,
            **{
                "vs pandas": f"{med(res[v]) / med(res['pandas']):.2f}x",
                "peak RSS GB": gb(peak(res[v])),
                "beyond input GB": gb(extra(res[v])),
                "same CSR": "yes" if same else "NO",
            },
        )


def bench_fit(plan, table, raw):
    call("artifacts", plan["data"])
    res = rounds(
        "fit",
        plan["data"],
        ["skals", "implicit"],
        plan["fit_rounds"],
        iterations=plan["fit_iterations"],
    )
    raw["fit"] = res
    same = {r["digest"] for rs in res.values() for r in rs}
    for v in ("skals", "implicit"):
        table.add(
            f"2 fit, 64 factors, {plan['fit_iterations']} iterations",
            v,
            med(res[v]),
            None if v == "implicit" else med(res["implicit"]),
            "implicit",
            **{
                "peak RSS GB": gb(peak(res[v])),
                "beyond input GB": gb(extra(res[v])),
                "same factors": "yes" if len(same) == 1 else "NO",
                "no copy": ("yes" if all(r["no_copy"] for r in res[v]) else "NO")
                if v == "skals"
                else None,
            },
        )


def bench_recommend(plan, table, raw):
    res = call("recommend", plan["data"], repeats=plan["rec_repeats"])
    raw["recommend"] = res
    parts = res["parts"]
    n = parts["topk_skals"]["n_rows"]
    floor = parts["topk_floor_matmul"]["time"]
    # the product into one reused buffer: no page faults, a tighter floor
    reused = parts["topk_floor_matmul_reused"]["time"]
    refs = {
        "skals": ("implicit", None),
        "implicit": ("floor_matmul", None),
        "skals_filtered": ("implicit_filtered", "skals"),
        "implicit_filtered": ("floor_matmul", "implicit"),
        "floor_matmul": (None, None),
        "floor_matmul_reused": ("floor_matmul", None),
    }
    for v, (ref, unfiltered) in refs.items():
        p = parts[f"topk_{v}"]
        cols = {
            "vs floor": f"{p['time'] / floor:.2f}x",
            "vs reused floor": f"{p['time'] / reused:.2f}x",
            "equal rows": None if p["equal_rows"] is None else f"{p['equal_rows']:.4f}",
        }
        if unfiltered:
            over = p["time"] / parts[f"topk_{unfiltered}"]["time"] - 1
            cols["filter cost"] = f"{100 * over:+.0f}%"
        if p.get("py_peak") is not None:
            cols["py peak MB"] = f"{p['py_peak'] / 2**20:.0f}"
        table.add(
            f"3 top-5, {n:,} known users",
            v,
            p["time"],
            parts[f"topk_{ref}"]["time"] if ref else None,
            ref or "",
            **cols,
        )
    fs, fi = parts["foldin_skals"], parts["foldin_implicit"]
    table.add(
        f"3 fold-in, {fs['n_rows']:,} new sessions",
        "skals predict",
        fs["time"],
        fi["time"],
        "implicit",
        **{"equal rows": f"{fs['equal_rows']:.4f}"},
    )
    table.add(
        f"3 fold-in, {fs['n_rows']:,} new sessions",
        "implicit recalculate_user",
        fi["time"],
    )


def bench_grid(plan, table, raw):
    it = plan["grid_iterations"]
    res = rounds("grid", plan["grid_data"], ["fits", "skals"], 1, iterations=it)
    raw["grid"] = res
    fits = med(res["fits"])
    label = f"4 grid 3x3x3, 3 folds ({res['fits'][0]['n_fits']} fits, {it} iter.)"
    table.add(label, "sum of bare ALS fits", fits)
    table.add(
        label,
        "skals GridSearchCV (cached preprocessing)",
        med(res["skals"]),
        fits,
        "fits",
        **{"peak RSS GB": gb(peak(res["skals"]))},
    )
    if plan.get("grid_nocache", True):
        nc = rounds("grid", plan["grid_data"], ["skals_nocache"], 1, iterations=it)
        raw["grid"].update(nc)
        table.add(
            label,
            "skals GridSearchCV, cache off",
            med(nc["skals_nocache"]),
            fits,
            "fits",
            **{"peak RSS GB": gb(peak(nc["skals_nocache"]))},
        )


def bench_e2e(plan, table, raw):
    it = plan["e2e_iterations"]
    variants = plan.get("e2e_variants", ["eager"])
    res = rounds("e2e", plan["data"], variants, 1, iterations=it)
    raw["e2e"] = res
    for v in variants:
        r = res[v][0]
        table.add(
            f"5 end to end, {it} iterations, {r['n_answers']:,} answers",
            "read_parquet" if v == "eager" else "scan_parquet (lazy)",
            r["time"],
            **{
                "fit s": f"{r['fit_time']:.1f}",
                "predict s": f"{r['predict_time']:.2f}",
                "peak RSS GB": gb(r["maxrss"]),
            },
        )


BENCHES = {
    "prep": bench_prep,
    "fit": bench_fit,
    "recommend": bench_recommend,
    "e2e": bench_e2e,
    "grid": bench_grid,
}


def environment() -> str:
    import implicit
    import polars
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import skals

    blas = ", ".join(
        f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(x.split(":")[1].strip() for x in f if "model name" in x)
    except (OSError, StopIteration):
        cpu = platform.processor()
    import os

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GB RAM; Python "
        f"{platform.python_version()}, skals {skals.__version__}, implicit "
        f"{implicit.__version__}, polars {polars.__version__}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, scikit-learn "
        f"{sklearn.__version__}; BLAS: {blas}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(PLANS), default="small")
    parser.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated benchmarks"
    )
    parser.add_argument(
        "--grid-iterations",
        type=int,
        default=None,
        help="ALS sweeps per fit in the grid benchmark (default: the plan's, 3 "
        "at small and full; issue 21 asks for 15, where fixed costs weigh less)",
    )
    args = parser.parse_args(argv)
    plan = dict(PLANS[args.scale])
    if args.grid_iterations is not None:
        plan["grid_iterations"] = args.grid_iterations
    only = args.only.split(",")
    for name in only:
        if name not in BENCHES:
            parser.error(f"unknown benchmark {name!r}; choose from {list(BENCHES)}")
    ensure(plan["data"])
    ensure(plan["grid_data"])
    table, raw = Table(), {}
    print(environment(), flush=True)
    t0 = time.perf_counter()
    for name in only:
        print(f"[{name}]", flush=True)
        try:
            BENCHES[name](plan, table, raw)
        except Exception as exc:  # report the others anyway
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
        print(table.markdown(), flush=True)
        out = CACHE / f"results_{args.scale}.json"
        out.write_text(json.dumps({"env": environment(), "raw": raw}, indent=1))
    print(f"\nTotal {time.perf_counter() - t0:.0f}s; raw results in {out}\n")
    print(table.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
