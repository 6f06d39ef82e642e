"""Running a sweep on Dask: the points cut into chunks (tasks large enough that scheduling does
not dominate), each chunk's rows written as one Parquet part when its task returns, so that a
killed sweep resumes with the chunks it has not written; then the parts merged into
points.parquet (and points.csv) in point order and the answers computed (amchw.sweep.answers).

Exactly once: only the client writes, one part per chunk id, by an atomic rename; a chunk whose
worker dies is re-run by the scheduler (and by this loop if its retries run out), and a part
already written is never written again. Every figure is a deterministic function of its point,
so the table is the same for any number of workers and after a resume."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from .points import columns, evaluate_chunk, shape, target_variants
from .spec import Spec

SCHEMA = "amchw.sweep/1"


class SweepError(RuntimeError):
    """A sweep that cannot run or resume (names the folder, spec or scheduler at fault)."""


def _arrow_schema(cols):
    import pyarrow as pa

    kinds = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    return pa.schema([(n, kinds[k]) for n, k in cols])


def _write_part(path: Path, rows: list[dict], schema) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    os.replace(tmp, path)


def _chunk_size(spec: Spec, n: int, workers: int) -> int:
    if spec.chunk:
        return spec.chunk
    # a few tasks per worker, each of at least ~50 points (about 50 ms of simulation)
    return max(50, min(20000, math.ceil(n / max(1, 8 * workers))))


def _client(scheduler: str | None, workers: int | None):
    """(dask Client, cluster to close or None)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as e:
            raise SweepError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def _state(out: Path, spec: Spec, n: int, chunk: int, restart: bool) -> int:
    """Check (or start) the folder's sweep.json; the chunk size the parts were cut with."""
    meta = out / "sweep.json"
    parts = out / "parts"
    if meta.exists() and not restart:
        try:
            old = json.loads(meta.read_text())
        except (OSError, ValueError) as e:
            raise SweepError(f"{meta}: unreadable ({e}); give --restart to start over") from None
        if old.get("digest") != spec.digest():
            raise SweepError(f"{out} holds another sweep's points (spec {old.get('spec')}); "
                             "give a new folder, or --restart to discard them")
        return int(old["chunk"])
    if parts.exists():
        shutil.rmtree(parts)
    for f in ("points.parquet", "points.csv", "summary.json", "pareto.png"):
        (out / f).unlink(missing_ok=True)
    parts.mkdir(parents=True)
    tmp = meta.with_name(".sweep.json.tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA, "spec": spec.path, "digest": spec.digest(),
                               "points": n, "chunk": chunk}, indent=1))
    os.replace(tmp, meta)
    return chunk


def run_sweep(spec: Spec, out_dir, scheduler: str | None = None, workers: int | None = None,
              restart: bool = False, log=print, on_part=None) -> dict:
    """Run (or resume) the sweep into out_dir; returns the summary (answers.summarise).
    on_part(chunk id, parts written so far, dask client): called after each part is written
    (tests kill a worker from it)."""
    from .answers import summarise
    from .variants import resolve

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SweepError(f"-o {out}: cannot create the folder ({e})") from None
    variants = resolve(spec, log)
    targets = target_variants(spec)
    n = math.prod(shape(spec, len(targets)))
    snrs = sorted({s for v in variants for s in v.acc_by_snr})
    cols = columns(snrs)
    schema = _arrow_schema(cols)
    chunk = _state(out, spec, n, _chunk_size(spec, n, workers or os.cpu_count() or 1), restart)
    parts = out / "parts"
    n_chunks = math.ceil(n / chunk)
    todo = [i for i in range(n_chunks) if not (parts / f"chunk-{i:06d}.parquet").exists()]
    log(f"[sweep] {n:,} points in {n_chunks} chunks of {chunk}; {n_chunks - len(todo)} "
        "already written")
    if todo:
        _run_chunks(spec, variants, targets, snrs, schema, parts, chunk, n, todo, scheduler,
                    workers, log, on_part)
    table = _merge(out, parts, n_chunks, schema)
    return summarise(spec, table, out, log)


def _run_chunks(spec, variants, targets, snrs, schema, parts, chunk, n, todo, scheduler,
                workers, log, on_part):
    from distributed import as_completed

    light = [(v.model, v.format, v.graph, v.error, v.accuracy, v.acc_by_snr, v.exits,
              v.exit_output) for v in variants]
    client, cluster = _client(scheduler, workers)
    try:
        [vf] = client.scatter([light], broadcast=True, hash=False)
        tag = spec.digest()[:10]
        left = set(todo)
        for attempt in range(3):   # the scheduler retries a task; this loop retries what is left
            futs = {client.submit(evaluate_chunk, vf, targets, spec, snrs, i * chunk,
                                  min(n, (i + 1) * chunk), key=f"amchw-sweep-{tag}-{i}-{attempt}",
                                  retries=3, pure=False): i for i in sorted(left)}
            for fut in as_completed(futs):
                i = futs[fut]
                try:
                    rows = fut.result()
                except Exception as e:  # noqa: BLE001 - a task lost for good: retried below
                    log(f"[sweep] chunk {i}: {type(e).__name__}: {e}; will retry")
                    continue
                _write_part(parts / f"chunk-{i:06d}.parquet", rows, schema)
                left.discard(i)
                if on_part is not None:
                    on_part(i, len(todo) - len(left), client)
            if not left:
                break
        if left:
            raise SweepError(f"chunks {sorted(left)[:5]}... failed three times; rerun the same "
                             "command to resume")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _merge(out: Path, parts: Path, n_chunks: int, schema):
    """points.parquet and points.csv from the parts, in point order (atomic writes)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    tables = [pq.read_table(parts / f"chunk-{i:06d}.parquet", schema=schema)
              for i in range(n_chunks)]
    table = pa.concat_tables(tables).sort_by("point")
    for name, write in (("points.parquet", lambda t, p: pq.write_table(t, p)),
                        ("points.csv", lambda t, p: pcsv.write_csv(t, p))):
        tmp = out / f".{name}.tmp"
        write(table, tmp)
        os.replace(tmp, out / name)
    return table
