"""Helpers shared by explainers, metrics, recipes and the CLI, one idea per module.

* `checks`: input checks with errors that name the argument (image batches, model outputs,
  targets).
* `validators`: scalar settings (ints and numbers in a range, probabilities, choices).
* `devices`: device strings and the device a model lives on.
* `batching`: a model applied to a large batch in chunks.
* `budget`: memory budgets: how many rows of an expanded batch one call may hold.
* `state`: context managers that leave a model exactly as they found it.
* `seeds`: per-batch seeds that do not depend on run order or process.
"""
