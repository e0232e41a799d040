"""Fold per-channel affine operations into neighbouring convolutions of an ONNX graph (exact arithmetic).

Why: PP-OCRv5's network follows most convolutions with learnable affine blocks (a scalar ``Mul`` then a scalar
``Add``, after the convolution and again after its activation). onnxruntime runs each as a separate pass over
memory, outside its blocked convolution layout, so on a CPU they and the layout reorders around them cost more
than the convolutions (measured: 57 % of a batch's time). onnxruntime's own Conv+Mul fusion does not fire on
this graph (its constants come first and are rank-1), and the maintained graph tools (onnxoptimizer,
onnx-simplifier) fold batch norms and constants, not affine blocks; hence this small pass.

Two rewrites, both exact up to float rounding:

* after a convolution: ``Conv -> Add(c) / Mul(c)`` with ``c`` a scalar or per-output-channel constant becomes
  the convolution alone, with ``W' = c W`` / ``B' = c B`` or ``B' = B + c``;
* before a convolution: ``Mul(s) -> Add(t) -> Conv`` with scalars ``s``, ``t``: the scale moves into the weights
  (zero padding scales to zero); the shift moves into the bias when the convolution has no padding
  (``B' = B + t * sum W``), otherwise one ``Add(t / s)`` stays in front of it
  (:func:`shifts_as_depthwise_conv` then turns it into a convolution onnxruntime runs in its blocked layout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_EPS = 1e-12


def _pads_zero(node: Any) -> bool:
    for attr in node.attribute:
        if attr.name == "pads" and any(int(p) != 0 for p in attr.ints):
            return False
        if attr.name == "auto_pad" and attr.s not in (b"", b"NOTSET", b"VALID"):
            return False
    return True


def fold_affine_into_conv(model: Any) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; returns the number of nodes removed."""
    from onnx import numpy_helper

    graph = model.graph
    const = _constants(graph)
    # a Reshape of constants (how the converted graph adds a convolution's bias) is a constant
    for node in graph.node:
        if node.op_type == "Reshape" and len(node.input) == 2 and all(i in const for i in node.input):
            data, shape = const[node.input[0]], const[node.input[1]]
            if all(int(d) != 0 for d in shape):  # 0 ("copy that dimension") is not needed here
                const[node.output[0]] = data.reshape([int(d) for d in shape])
    outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    removed: set[int] = set()
    new_inits: list[Any] = []

    def consumers(name: str) -> list[int]:
        return [k for k, n in enumerate(nodes) if k not in removed and name in n.input]

    def producer(name: str) -> int | None:
        return next((k for k, n in enumerate(nodes) if k not in removed and name in n.output), None)

    def scalar_operand(k: int | None, op: str, x: str) -> tuple[str, float] | None:
        """(the non-constant input, the scalar) of node ``k`` when it is ``op`` of a tensor and a scalar
        constant and ``x``, its output, is read by one node only."""
        if k is None or nodes[k].op_type != op or x in outputs or len(consumers(x)) != 1:
            return None
        a, b = list(nodes[k].input)
        src, c = (a, const.get(b)) if a not in const else (b, const.get(a))
        if src in const or c is None or c.size != 1:
            return None
        return src, float(c.reshape(-1)[0])

    for k, node in enumerate(nodes):
        if node.op_type != "Conv" or k in removed or node.input[1] not in const:
            continue
        has_b = len(node.input) > 2 and bool(node.input[2])
        if has_b and node.input[2] not in const:
            continue
        w = const[node.input[1]].astype(np.float64)
        b = const[node.input[2]].astype(np.float64) if has_b else np.zeros(w.shape[0])
        cout, changed = w.shape[0], False
        # after the convolution: Add / Mul by a scalar or a per-output-channel constant
        while True:
            y = node.output[0]
            users = consumers(y)
            if y in outputs or len(users) != 1:
                break
            nxt = nodes[users[0]]
            if nxt.op_type not in ("Add", "Mul") or list(nxt.input).count(y) != 1:
                break
            c = const.get(nxt.input[1] if nxt.input[0] == y else nxt.input[0])
            if c is None or c.ndim > 4:
                break
            try:
                vec = np.broadcast_to(c.astype(np.float64), (1, cout, 1, 1)).reshape(cout)
            except ValueError:  # not per channel (it varies along height or width, or has another size)
                break
            if nxt.op_type == "Add":
                b = b + vec
            else:
                w, b = w * vec[:, None, None, None], b * vec
            node.output[0] = nxt.output[0]
            removed.add(users[0])
            changed = True
        # before the convolution: [Mul(s) ->] [Add(t) ->] Conv with scalars s, t
        x = node.input[0]
        scale, shift, chain = 1.0, 0.0, []
        p = producer(x)
        add = scalar_operand(p, "Add", x)
        if add is not None and p is not None:
            chain.append(p)
            x, shift = add
            p = producer(x)
        mul = scalar_operand(p, "Mul", x)
        if mul is not None and p is not None and abs(mul[1]) > _EPS:
            chain.append(p)
            x, scale = mul
            shift /= scale  # conv(s*h + t) = conv(s*(h + t/s))
        exact = shift == 0.0 or _pads_zero(node)  # the whole shift can move into the bias
        if chain and (scale != 1.0 or exact):
            w = w * scale
            changed = True
            if exact:
                b = b + shift * w.sum(axis=(1, 2, 3))
                removed.update(chain)
                node.input[0] = x
            else:  # zero padding is not shifted: one Add(t / s) stays in front of the convolution
                add_k, mul_k = chain
                name = f"fold_{k}_shift"
                new_inits.append(numpy_helper.from_array(np.array(shift, dtype=np.float32), name))
                nodes[add_k].input[:] = [x, name]
                removed.add(mul_k)
        if changed:
            dtype = const[node.input[1]].dtype
            for pos, (name, arr) in enumerate(((f"fold_{k}_W", w), (f"fold_{k}_B", b)), start=1):
                const[name] = arr.astype(dtype)
                new_inits.append(numpy_helper.from_array(const[name], name))
                if pos < len(node.input):
                    node.input[pos] = name
                else:
                    node.input.append(name)
    kept = [n for k, n in enumerate(nodes) if k not in removed]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(new_inits)
    _drop_unused(graph)
    return len(removed)


def shifts_as_depthwise_conv(model: Any) -> int:
    """Rewrite ``Add(x, c) -> Conv`` with ``c`` a scalar or per-channel constant as a 1x1 depthwise convolution
    (weights 1, bias ``c``) in ``model`` (an ``onnx.ModelProto``), in place; returns the number rewritten.

    Why: the shifts :func:`fold_affine_into_conv` must leave in front of padded convolutions run, in
    onnxruntime, outside its blocked (NCHWc) convolution layout, so each costs a layout reorder out of the
    preceding convolution and one back into the next; a 1x1 depthwise convolution stays in the blocked layout.
    Exact (``x * 1 + c``). Measured on the default model: the same outputs bit for bit, 10 % more lines/s at
    batch 32 (docs/RESULTS.md).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    const = _constants(graph)
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def per_channel_shift(node: Any) -> tuple[str, np.ndarray] | None:
        """(the tensor input, the shift per channel) when ``node`` adds a constant to what only convolutions
        with constant weights read, and the constant is a scalar or per channel."""
        if node.op_type != "Add" or len(node.input) != 2 or node.output[0] in outputs:
            return None
        a, b = node.input
        x, c = (a, const.get(b)) if a not in const else (b, const.get(a))
        users = readers.get(node.output[0], [])
        if c is None or x in const or not users:
            return None
        if any(u.op_type != "Conv" or u.input[1] not in const for u in users):
            return None
        ins = {int(const[u.input[1]].shape[1]) * _group(u) for u in users}
        if len(ins) != 1:
            return None
        channels = ins.pop()
        try:
            return x, np.broadcast_to(c, (1, channels, 1, 1)).reshape(channels)
        except ValueError:  # varies along height or width, or has another size
            return None

    new_nodes, new_inits, count = [], [], 0
    for node in graph.node:
        found = per_channel_shift(node)
        if found is None:
            new_nodes.append(node)
            continue
        x, bias = found
        channels = len(bias)
        w_name, b_name = f"shift_dw_{count}_W", f"shift_dw_{count}_B"
        new_inits += [
            numpy_helper.from_array(np.ones((channels, 1, 1, 1), dtype=bias.dtype), w_name),
            numpy_helper.from_array(np.ascontiguousarray(bias), b_name),
        ]
        new_nodes.append(
            helper.make_node(
                "Conv",
                [x, w_name, b_name],
                [node.output[0]],
                name=f"shift_dw_{count}",
                group=channels,
                kernel_shape=[1, 1],
            )
        )
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(new_nodes)
        graph.initializer.extend(new_inits)
        _drop_unused(graph)
    return count


def _constants(graph: Any) -> dict[str, np.ndarray]:
    """The graph's initializers and the outputs of its ``Constant`` nodes, by name."""
    from onnx import numpy_helper

    const: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    const[node.output[0]] = numpy_helper.to_array(attr.t)
    return const


def _group(node: Any) -> int:
    return next((int(a.i) for a in node.attribute if a.name == "group"), 1)


def _drop_unused(graph: Any) -> None:
    """Remove nodes whose outputs nothing reads (ONNX operators have no side effects) and unread initializers."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        keep_nodes = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep_nodes) == len(graph.node) and all(t.name in used for t in graph.initializer):
            return
        del graph.node[:]
        graph.node.extend(keep_nodes)
        keep = [t for t in graph.initializer if t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(keep)
