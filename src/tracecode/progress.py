"""A progress bar for ``tracecode run`` in a terminal, driven by the stages' own log lines.

The pipeline logs one INFO line per stage (module loggers ``tracecode.<stage>``); a handler
moves the bar to that stage and shows the line, so the pipeline knows nothing of it.
Nothing is drawn when stderr is not a terminal (cron, CI, pipes): the log lines stay.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# the stages in the order a run passes them, by logger name
STAGES = (
    ("tracecode.reference", "参考数据 reference"),
    ("tracecode.ingest", "导入报文 ingest"),
    ("tracecode.inputs", "规则输入 inputs"),
    ("tracecode.rules", "规则 rules"),
    ("tracecode.leads", "线索 leads"),
    ("tracecode.anomaly", "模型 model"),
    ("tracecode.pipeline", "写出 export"),
)


def interactive() -> bool:
    return sys.stderr.isatty()


def setup_logging(verbose: bool) -> None:
    """Log lines to stderr: through rich when a bar may be drawn, plain otherwise."""
    level = logging.DEBUG if verbose else logging.INFO
    if interactive():
        from rich.logging import RichHandler

        logging.basicConfig(level=level, format="%(name)s: %(message)s", datefmt="%H:%M:%S",
                            handlers=[RichHandler(console=_console(), show_path=False)])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S", stream=sys.stderr)


_CONSOLE = None


def _console():  # type: ignore[no-untyped-def]
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(stderr=True)
    return _CONSOLE


class _StageHandler(logging.Handler):
    def __init__(self, progress, task) -> None:  # type: ignore[no-untyped-def]
        super().__init__(logging.INFO)
        self.progress, self.task, self.at = progress, task, 0

    def emit(self, record: logging.LogRecord) -> None:
        for i, (name, label) in enumerate(STAGES, start=1):
            if record.name.startswith(name):
                self.at = max(self.at, i)
                message = record.getMessage().splitlines()[0][:40]
                self.progress.update(self.task, completed=self.at - 1,
                                     description=f"{label}: {message}")
                return


@contextmanager
def run_progress() -> Iterator[None]:
    """Show a bar over the run's stages while the block runs (terminals only)."""
    if not interactive():
        yield
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), BarColumn(bar_width=24), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=_console(), transient=True)
    task = progress.add_task("开始 start", total=len(STAGES))
    handler = _StageHandler(progress, task)
    logger = logging.getLogger("tracecode")
    logger.addHandler(handler)
    try:
        with progress:
            yield
    finally:
        logger.removeHandler(handler)
