"""One evaluation pipeline: explain and score batches, gather them, summarise once.

* `plan`: the settings of a run (metrics, options, seed, batch size, quota), each default
  declared once, and the sample draw;
* `loop`: one batch of one method: seeded, timed, memory measured, every applicable metric
  scored, warnings recorded instead of printed;
* `gather`: what the summary needs, filled batch by batch in memory (`compare`) or shard by
  shard (a data-set job, on one process or on Ray);
* `summary`: the `ComparisonResult` and its meta, built in one place.
"""

from xai_gen.evaluation.gather import Gathered
from xai_gen.evaluation.loop import Batch, BatchResult, explain_batch
from xai_gen.evaluation.memory import run_in_memory
from xai_gen.evaluation.plan import (
    BATCH_SIZE,
    EXPENSIVE_N,
    FIGURE_ROWS,
    SHARD_SIZE,
    Plan,
    sample_index,
)
from xai_gen.evaluation.summary import notice_lines, summarise

__all__ = [
    "BATCH_SIZE",
    "EXPENSIVE_N",
    "FIGURE_ROWS",
    "SHARD_SIZE",
    "Batch",
    "BatchResult",
    "Gathered",
    "Plan",
    "explain_batch",
    "notice_lines",
    "run_in_memory",
    "sample_index",
    "summarise",
]
