"""Loading pretrained weights into a model whose charset differs (fine-tuning to a new alphabet).

Every tensor whose name and shape agree is kept. The CTC head's output layer (``head.fc``, one row
per class) is rebuilt for the new charset: the row of every symbol both charsets share (blank
included, always class 0) is copied from the old head, and only the rows of new symbols keep the
fresh initialisation of the new model. With ``case_init``, a new symbol whose other case existed in
the old charset (``A`` when the old one had only ``a``) starts from that row: a lower-casing model
already tells letters apart, so the head only has to learn case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from crnn.charset import Charset

log = logging.getLogger(__name__)
HEAD_ROWS = ("head.fc.weight", "head.fc.bias")  # (num_classes, D) and (num_classes,)


@dataclass
class TransferReport:
    """What ``transfer_weights`` did: tensor names kept, and symbols mapped / case-mapped / re-initialised."""

    kept: list[str] = field(default_factory=list)
    mapped: list[str] = field(default_factory=list)  # symbols whose head row was copied (blank as "<blank>")
    case_mapped: list[str] = field(default_factory=list)
    reinit: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One log line."""
        def few(items: list[str]) -> str:
            return "".join(items) if len(items) <= 40 else "".join(items[:40]) + "..."

        return (f"kept {len(self.kept)} tensors; head rows: {len(self.mapped)} mapped, "
                f"{len(self.case_mapped)} case-mapped ({few(self.case_mapped)}), "
                f"{len(self.reinit)} re-initialised ({few(self.reinit)})")


def row_map(old: Charset, new: Charset, case_init: bool = False) -> tuple[list[int | None], TransferReport]:
    """For each class of ``new``: the class of ``old`` whose head row it starts from, or None (fresh).

    Class 0 (blank) maps to 0. A symbol present in ``old`` maps to it; with ``case_init`` a symbol whose
    other case is in ``old`` maps to that.
    """
    report = TransferReport(mapped=["<blank>"])
    if old.chars == new.chars:  # the same charset: every row where it was (a repeated symbol keeps both rows)
        report.mapped += new.chars
        return list(range(new.num_classes)), report
    old_index = {c: i + 1 for i, c in enumerate(old.chars)}  # last occurrence wins, as Charset.encode
    out: list[int | None] = [0]
    for c in new.chars:
        if c in old_index:
            out.append(old_index[c])
            report.mapped.append(c)
        elif case_init and c.swapcase() in old_index and c.swapcase() != c:
            out.append(old_index[c.swapcase()])
            report.case_mapped.append(c)
        else:
            out.append(None)
            report.reinit.append(c)
    return out, report


def transfer_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], old: Charset, new: Charset,
                     case_init: bool = False) -> TransferReport:
    """Load ``state`` (weights of a model for charset ``old``) into ``model`` (built for ``new``).

    Raises:
        ValueError: a tensor other than the head's output rows is missing or has another shape (a
            different architecture, not just a different charset); the message names it.
    """
    target = model.state_dict()
    rows, report = row_map(old, new, case_init)
    merged: dict[str, torch.Tensor] = {}
    problems = [k for k in target if k not in state]
    problems += [k for k in state if k not in target]
    for name, want in target.items():
        got = state.get(name)
        if got is None:
            continue
        if name in HEAD_ROWS and got.shape[1:] == want.shape[1:]:
            merged[name] = _remap_rows(want, got.to(want.dtype), rows)
        elif got.shape != want.shape:
            problems.append(f"{name} {tuple(got.shape)} vs {tuple(want.shape)}")
        else:
            merged[name] = got.to(want.dtype) if got.is_floating_point() else got
            report.kept.append(name)
    if problems:
        raise ValueError(f"pretrained weights do not fit this architecture: {', '.join(problems[:5])}")
    model.load_state_dict(merged)
    return report


def _remap_rows(fresh: torch.Tensor, old: torch.Tensor, rows: list[int | None]) -> torch.Tensor:
    """``fresh`` (new_classes, ...) with row i replaced by ``old[rows[i]]`` where rows[i] is not None."""
    out = fresh.clone()
    for i, j in enumerate(rows):
        if j is not None:
            out[i] = old[j]
    return out
