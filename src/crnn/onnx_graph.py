"""Rewrites of an exported ONNX graph that keep its math and make onnxruntime faster or the file smaller.

* ``fuse_for_runtime``: the TorchScript exporter spells the SE block's ``mean(H, W)`` as ReduceMean and
  Paddle's hard sigmoid ``clip(0.2 x + 0.5, 0, 1)`` as Mul/Add/Clip. onnxruntime's NCHWc layout pass
  keeps GlobalAveragePool and a Conv + HardSigmoid pair in the blocked layout, but has to convert
  the tensors back to NCHW around a ReduceMean or a Mul/Add/Clip chain, so the same math is written as
  those single ops (measured: 16 tensor reorders fewer per forward pass).
* ``store_fp16``: float32 weights whose values are exactly representable in float16 (the bundled
  model's weights are stored in float16) are stored as float16 plus a Cast, halving the file; onnxruntime
  folds the Casts when it loads the model, so it computes with the same float32 values.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Values of initializers, Constant nodes and Casts of those, by tensor name."""
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        elif n.op_type == "Cast" and n.input[0] in consts:
            to = helper.get_attribute_value(n.attribute[0])
            consts[n.output[0]] = consts[n.input[0]].astype(helper.tensor_dtype_to_np_dtype(to))
    return consts


def fuse_for_runtime(model: onnx.ModelProto) -> int:
    """Rewrite ReduceMean(H, W) as GlobalAveragePool and Mul/Add/Clip(0, 1) as HardSigmoid, in place.

    Returns:
        the number of rewrites.
    """
    g = model.graph
    consts = _constants(g)
    users: dict[str, int] = {}
    first_user: dict[str, onnx.NodeProto] = {}
    for n in g.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
            first_user.setdefault(i, n)

    def scalar(name: str) -> float | None:
        v = consts.get(name)
        return float(v.reshape(())) if v is not None and v.size == 1 else None

    def only_user(name: str, op: str) -> onnx.NodeProto | None:
        n = first_user.get(name)
        return n if n is not None and n.op_type == op and users.get(name) == 1 else None

    changed = 0
    drop: set[int] = set()
    insert: list[tuple[onnx.NodeProto, onnx.NodeProto]] = []
    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if (n.op_type == "ReduceMean" and len(n.input) == 1 and list(attrs.get("axes", [])) == [2, 3]
                and attrs.get("keepdims", 1) == 1):
            n.op_type = "GlobalAveragePool"  # same mean over H and W of an NCHW tensor
            del n.attribute[:]
            changed += 1
        elif n.op_type == "Mul" and scalar(n.input[1]) is not None:
            add = only_user(n.output[0], "Add")
            clip = only_user(add.output[0], "Clip") if add is not None and scalar(add.input[1]) is not None else None
            if (add is None or clip is None or len(clip.input) != 3 or scalar(clip.input[1]) != 0.0
                    or scalar(clip.input[2]) != 1.0):
                continue
            hs = helper.make_node("HardSigmoid", [n.input[0]], [clip.output[0]], name=f"{clip.name}/HardSigmoid",
                                  alpha=scalar(n.input[1]), beta=scalar(add.input[1]))
            insert.append((clip, hs))
            drop.update(id(x) for x in (n, add, clip))
            changed += 1
    replacement = {id(old): new for old, new in insert}
    nodes = [replacement.get(id(n), n) for n in g.node if id(n) not in drop or id(n) in replacement]
    del g.node[:]
    g.node.extend(nodes)
    _drop_unused_constants(g)
    return changed


def _drop_unused_constants(g: onnx.GraphProto) -> None:
    """Remove Constant/Cast nodes and initializers nothing reads any more."""
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if n.op_type in ("Constant", "Cast") and not used.intersection(n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


def store_fp16(model: onnx.ModelProto, min_size: int = 16) -> int:
    """Store float32 initializers that float16 holds exactly as float16 + Cast, in place.

    Only exact values are converted (so the model computes the same); returns how many were.
    """
    g = model.graph
    inits, casts = [], []
    for t in g.initializer:
        v = numpy_helper.to_array(t)
        if v.dtype == np.float32 and v.size >= min_size and np.array_equal(v.astype(np.float16).astype(np.float32), v):
            inits.append(numpy_helper.from_array(v.astype(np.float16), f"{t.name}/fp16"))
            casts.append(helper.make_node("Cast", [f"{t.name}/fp16"], [t.name], to=TensorProto.FLOAT,
                                          name=f"{t.name}/to_fp32"))
        else:
            inits.append(t)
    del g.initializer[:]
    g.initializer.extend(inits)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return len(casts)
