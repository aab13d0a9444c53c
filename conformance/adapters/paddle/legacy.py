"""Paddle's older loss functions that ported code still calls: ``softmax_with_cross_entropy``
(deprecated since 2.0, kept) and ``log_loss``."""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Op, Param, Spec, Tensor, index_targets
from conformance.adapters.paddle.classification import _PROFILE as _CE_PROFILE
from conformance.oracle.options import Declared
from conformance.protocol import Task

_API = "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional"
# Per-element losses; mean/sum are Paddle's own reduce functions, shown in the call text.
_PADDLE_REDUCE = {"mean": "paddle.mean", "sum": "paddle.sum"}


def _column_only(task: Task) -> str | None:
    """log_loss: "input (Tensor) – a 2-D tensor with shape [N x 1]"."""
    if task.input.ndim == 2 and task.input.shape[1] == 1:
        return None
    return "paddle.nn.functional.log_loss takes [N x 1] input only (documented)"


_SWCE_DOC = f"{_API}/softmax_with_cross_entropy_en.html"
SPECS = (
    # Hard labels carry the class axis with size 1 ("label ... shape[axis] = 1"): the user
    # unsqueezes an (N, d1, ...) label; soft labels have the logits' shape.
    Spec(
        "paddle.nn.functional.softmax_with_cross_entropy",
        "cross_entropy",
        frozenset({"index", "probs"}),
        args=(),
        kwargs=(
            Kw("logits", Tensor("input")),
            Kw(
                "label",
                Op("paddle.unsqueeze", (Tensor("target"), Const(1))),
                when=index_targets,
            ),
            Kw("label", Tensor("target"), when=lambda task: not index_targets(task)),
            Kw("soft_label", Const(of=lambda task: task.target_kind == "probs")),
            Kw("ignore_index", Param("ignore_index"), when=index_targets),
            Kw("axis", Const(1)),
        ),
        reduce=_PADDLE_REDUCE,
        doc="per-element losses; mean/sum via paddle.mean/paddle.sum",
        profile=(
            # the same fused kernel as cross_entropy (clip at -64, softmax - label gradient)
            *(d for d in _CE_PROFILE if d.option in ("logit_clip", "target_sum")),
            # "Returns: ... shape[axis] = 1": the class axis is kept
            Declared("none_shape", "keepdim", _SWCE_DOC),
            # ignored positions hold 0 and paddle.mean averages every element
            Declared(
                "index_mean",
                "elements",
                "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/mean_en.html",
            ),
        ),
    ),
    # "-label * log(input + epsilon) - (1 - label) * log(1 - input + epsilon)", epsilon 1e-4
    Spec(
        "paddle.nn.functional.log_loss",
        "binary_cross_entropy",
        frozenset({"binary"}),
        args=(),
        kwargs=(
            Kw("input", Tensor("input")),
            Kw("label", Tensor("target")),
        ),
        reduce=_PADDLE_REDUCE,
        doc="[N x 1] probabilities; per-element losses, mean/sum via paddle.mean/paddle.sum",
        profile=(Declared("log_clamp", "add_1e-4", f"{_API}/log_loss_en.html"),),
        unsupported=_column_only,
    ),
)
