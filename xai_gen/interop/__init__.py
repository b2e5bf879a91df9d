"""Bridges to other explainability libraries.

`quantus_explain_func` makes any registered explainer a Quantus `explain_func`;
`quantus_metric` makes a Quantus metric usable in `compare` and beside `xai_gen.metrics`.
Quantus itself is an optional extra (`pip install "xai-gen[quantus]"`), imported on first use.
"""

from xai_gen.interop.quantus import quantus_explain_func, quantus_metric

__all__ = ["quantus_explain_func", "quantus_metric"]
