"""The simulator: a landing directory of NHSA 35xx uploads with planted frauds.

>>> from pathlib import Path
>>> result = simulate(Path("/tmp/landing"), scale="demo", days=14, seed=7)  # doctest: +SKIP
>>> result.n_truth > 0  # doctest: +SKIP
True

``OUT/reference/*.csv`` and ``OUT/messages/<upload date>/part-NNNN.jsonl`` follow
shared/contract.md and docs/messages.md; ``OUT/truth.csv`` lists every planted fraud
(category, subject_type, subject_id, note). Normal buying and the legitimate look-alikes
(``lookalikes.py``) are listed nowhere: a screening that flags them is wrong.

The world is generated chunk by chunk (groups of whole districts: their people, shops
and chains), so memory stays bounded at any scale; within a chunk everything is
vectorised. Two threads encode and write finished chunks while the next is generated;
each chunk has its own random stream and its own files, so the bytes do not depend on
that. Same seed, same bytes.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from tracecode.errors import TracecodeError
from tracecode.simulate.frauds import plan_frauds
from tracecode.simulate.habits import apply_habits, plan_habits
from tracecode.simulate.lookalikes import add_lookalikes, malformed_copies
from tracecode.simulate.normal import home_lines, traveller_lines
from tracecode.simulate.scales import SCALES, Scale
from tracecode.simulate.stock import allocate
from tracecode.simulate.world import World, build_world
from tracecode.simulate.writer import (
    LAYOUTS,
    prepare,
    write_issuance,
    write_messages,
    write_reference,
)

__all__ = ["SCALES", "Scale", "SimulationError", "SimulationResult", "World", "simulate"]

log = logging.getLogger(__name__)
OWN_OUTPUTS = ("messages", "reference", "truth.csv", "habits.csv")
WRITERS = 2
ROWS_IN_FLIGHT = 1_000_000  # rows of chunks that may wait or be written at once


class SimulationError(TracecodeError):
    """The simulation cannot run with the options given."""


@dataclass(frozen=True)
class SimulationResult:
    out: Path
    n_messages: int  # lines written, malformed ones included
    n_codes: int  # codes listed in the well-formed messages
    n_truth: int  # planted frauds (rows of truth.csv)
    seconds: float


def simulate(
    out: Path,
    *,
    scale: str = "demo",
    days: int = 7,
    seed: int = 0,
    start: date = date(2025, 11, 1),
    layout: str = "parts",
    habits: bool = False,
) -> SimulationResult:
    """Write a simulated landing directory and its truth to ``out``.

    ``out`` must be empty, absent, or an earlier simulation's output (which is replaced).
    Frauds whose shape needs a longer history are skipped with a warning, e.g. a
    ``dup_cross_long_gap`` needs ``days >= 9``. ``habits`` plants real upload habits and
    capture gaps (``simulate/habits.py``), listed in ``habits.csv``.
    """
    began = time.perf_counter()
    if scale not in SCALES:
        raise SimulationError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if days < 1:
        raise SimulationError(f"--days must be at least 1, not {days}")
    if layout not in LAYOUTS:
        raise SimulationError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    out = Path(out)
    _prepare(out)
    world = build_world(SCALES[scale], start, days, seed)
    log.info("world: %d institutions, %d persons, %d drugs, %d lots", world.inst.height,
             world.persons.height, world.catalog.height, world.lots.height)

    n_messages = n_codes = 0
    # writer threads encode and write chunks while this one generates the next (polars
    # and numpy release the GIL, so the threads share the cores); at most WRITERS chunks
    # and ROWS_IN_FLIGHT rows wait or are being written, which bounds memory
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="simulate-writer") as pool:
        reference = [pool.submit(write_reference, world, out), pool.submit(prepare, world)]
        pending: deque[tuple[int, Future[tuple[int, int]]]] = deque()
        travel = traveller_lines(world, np.random.default_rng([seed, 2]))
        frauds, truth = plan_frauds(world, np.random.default_rng([seed, 3]))
        travel_chunk = world.i_chunk[travel["inst"].to_numpy()]
        fraud_chunk = world.i_chunk[frauds["inst"].to_numpy()]
        plan = plan_habits(world, frauds, np.random.default_rng([seed, 5])) if habits else None
        for chunk in range(world.n_chunks):
            rng = np.random.default_rng([seed, 10, chunk])
            lines = pl.concat([home_lines(world, chunk, rng),
                               travel.filter(pl.Series(travel_chunk == chunk))])
            sales, stock = allocate(world, lines, rng)
            rows = add_lookalikes(world, pl.concat([sales, stock]), chunk, rng)
            rows = pl.concat([rows, frauds.filter(pl.Series(fraud_chunk == chunk))])
            if plan is not None:
                rows = apply_habits(world, rows, plan, np.random.default_rng([seed, 6, chunk]))
            rows = pl.concat([rows, malformed_copies(rows, rng)])
            del lines, sales, stock
            while pending and (len(pending) >= WRITERS or sum(
                    n for n, _ in pending) + rows.height > ROWS_IN_FLIGHT):
                m, c = pending.popleft()[1].result()
                n_messages, n_codes = n_messages + m, n_codes + c
            pending.append(
                (rows.height, pool.submit(_write_chunk, world, rows, chunk, out, layout)))
            del rows
        for _, done in pending:
            m, c = done.result()
            n_messages, n_codes = n_messages + m, n_codes + c
        for made in reference:
            made.result()
    write_issuance(world, out, np.random.default_rng([seed, 4]))
    truth.write_csv(out / "truth.csv")
    if plan is not None:
        plan.drop("inst").write_csv(out / "habits.csv")
    seconds = time.perf_counter() - began
    log.info("simulated %d messages, %d codes, %d planted frauds in %.1f s", n_messages,
             n_codes, truth.height, seconds)
    return SimulationResult(out, n_messages, n_codes, truth.height, seconds)


def _write_chunk(world: World, rows: pl.DataFrame, chunk: int, out: Path,
                 layout: str) -> tuple[int, int]:
    m, c = write_messages(world, rows, chunk, out, layout)
    log.info("chunk %d/%d: %d messages", chunk + 1, world.n_chunks, m)
    return m, c


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SimulationError(f"{out} is a file; give a directory to write the landing into")
    if out.is_dir():
        present = {p.name for p in out.iterdir()}
        if present and not (present & set(OWN_OUTPUTS)) and present != {"README.md"}:
            raise SimulationError(
                f"{out} is not empty and holds no earlier simulation; choose an empty or new "
                "directory")
        for name in OWN_OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
