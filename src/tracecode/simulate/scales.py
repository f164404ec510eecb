"""How big a simulated world is."""

from __future__ import annotations

from dataclasses import dataclass

from tracecode.simulate.data import SCALE_REGIONS


@dataclass(frozen=True)
class Scale:
    """Size of a world. Volume is per day: ``--days`` lengthens the history.

    ``population`` is the insured population behind the institutions; only the people who
    buy something in the window (plus a register of dormant and deceased people) are
    written to persons.csv. About 0.066 sale lines per person and day.
    """

    name: str
    regions: tuple[str, ...] | None  # admdvs codes; None: every region of data.REGIONS
    institutions: int
    population: int
    chunks: int  # generated and written one after another, to bound memory
    shards_per_chunk: int  # part files per chunk and upload day
    frauds: int  # planted cases per rule category
    anomaly_institutions: int
    anomaly_persons: int
    gzip: bool = False


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        Scale("demo", SCALE_REGIONS["demo"], 45, 2_600, 1, 2, 1, 2, 3),
        # a district: the size of the independent worlds the model was judged on
        # (~180 institutions, ~8,000 buyers in a week)
        Scale("district", SCALE_REGIONS["demo"], 180, 60_000, 1, 1, 3, 3, 8),
        Scale("city", SCALE_REGIONS["city"], 3_000, 1_000_000, 4, 1, 12, 15, 30),
        Scale("province-day", None, 50_000, 85_000_000, 24, 1, 40, 40, 80),
    )
}
