"""Rewrites of a cleaned QONNX ModelProto into the form FINN's front end maps (onnx + numpy).

- `unit_height`: a network of 1-D layers as the equivalent 2-D one on (N, C, 1, W) tensors
  with (1, k) windows. FINN lowers convolutions and pools with 2-D kernels only (its
  `LowerConvsToMatMul` reads a kernel height and width; qonnx's `Change3DTo4DTensors` route
  leaves MaxPool dilations 1-D and MultiThreshold layouts FINN cannot execute). The element
  order is unchanged: a (C, W) frame and its (C, 1, W) form hold the same values in the same
  row-major order, so Flatten and every FC layer after it see identical vectors.
- `avgpool_as_depthwise`: an average pool over quantized codes as the depthwise convolution
  with unit weights (scale 1/window) that computes the same sum. FINN maps average pools
  only as square Trunc-quantized pools or global pools whose 1/N multiply its later steps
  cannot place; a depthwise convolution becomes a VVAU and its 1/N scale is absorbed into the
  next thresholds. Windows must hold a power of two of positions (1/N exact in float32).
- `pools_per_branch`: a max pool whose output several branches read is written once per
  branch (readers in order of their module paths). FINN's streamlining moves a shared pool
  past one branch's MultiThreshold only and breaks the other's layout; a pool has no
  weights, so the copies change no value.
- `vector_quant_params`: the scale and zero point of a bias quantizer as shape-(1,)
  tensors instead of 0-d scalars (qonnx's `ExtractBiasFromConv`, inside FINN's
  `ConvertQONNXtoFINN`, reshapes them and fails on 0-d arrays).

Each refuses, naming the node, what it cannot rewrite exactly.
"""

from __future__ import annotations

import numpy as np

WINDOW_OPS = ("Conv", "MaxPool", "AveragePool")
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Quant", "IntQuant", "BatchNormalization", "Relu",
               "Identity")


class FinnFormError(ValueError):
    """A graph that cannot be rewritten into FINN's form; names the node."""


def _shape(vi) -> list[int]:
    return [int(d.dim_value) for d in vi.type.tensor_type.shape.dim]


def _set_shape(vi, shape) -> None:
    dims = vi.type.tensor_type.shape.dim
    del dims[:]
    for d in shape:
        dims.add().dim_value = int(d)


def _unit(shape) -> list[int]:
    """(..., W) -> (..., 1, W): the unit height goes before the last (time) axis."""
    shape = list(shape)
    return shape[:-1] + [1] + shape[-1:]


def _attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return a
    return None


def unit_height(model):
    """1-D convolutions, pools and their tensors as 2-D with unit height (in place; returns
    the model). A model with no 3-D activation tensor is returned unchanged."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    vis = {v.name: v for v in list(g.input) + list(g.value_info) + list(g.output)}
    three_d = {n for n, v in vis.items() if n not in inits and len(_shape(v)) == 3}
    if not three_d:
        return model
    producer = {o: n for n in g.node for o in n.output}

    def reshape_init(name: str, where: str) -> None:
        t = inits[name]
        a = numpy_helper.to_array(t)
        if a.ndim >= 2:
            t.CopyFrom(numpy_helper.from_array(_unit_shape_array(a), name))
            if name in vis:
                _set_shape(vis[name], _unit(_shape(vis[name])))

    done: set[str] = set()
    for n in g.node:
        where = f"node {n.name!r} ({n.op_type})"
        touches = [i for i in list(n.input) + list(n.output) if i in three_d]
        if not touches:
            continue
        if n.op_type in WINDOW_OPS:
            for key, fill in (("kernel_shape", 1), ("strides", 1), ("dilations", 1)):
                a = _attr(n, key)
                if a is not None:
                    if len(a.ints) != 1:
                        raise FinnFormError(f"{where}: {key} {list(a.ints)} is not 1-D")
                    v = a.ints[0]
                    del a.ints[:]
                    a.ints.extend([fill, v])
            ap = _attr(n, "auto_pad")
            if ap is not None and ap.s in (b"SAME_UPPER", b"SAME_LOWER"):
                _explicit_same_pads(n, ap, _shape(vis[n.input[0]])[-1], where)
            elif ap is not None and ap.s not in (b"NOTSET", b"VALID", b""):
                raise FinnFormError(f"{where}: auto_pad {ap.s.decode()}")
            a = _attr(n, "pads")
            if a is not None:
                lo, hi = a.ints
                del a.ints[:]
                a.ints.extend([0, lo, 0, hi])
            if n.op_type == "Conv":  # the weight: an initializer or a quantizer of one
                w = n.input[1]
                src = producer.get(w)
                if w in inits:
                    reshape_init(w, where)
                elif src is not None and src.op_type in ("Quant", "IntQuant") \
                        and src.input[0] in inits:
                    for p in src.input[:3]:
                        if p in inits and p not in done:
                            reshape_init(p, where)
                            done.add(p)
                    if w in vis:
                        _set_shape(vis[w], _unit(_shape(vis[w])))
                else:
                    raise FinnFormError(f"{where}: weight {w!r} is neither an initializer "
                                        "nor a quantized initializer")
        elif n.op_type in ELEMENTWISE:
            for i in n.input[1:]:  # constants broadcast against (N, C, W) gain the unit axis
                if i in inits and i not in done:
                    reshape_init(i, where)
                    done.add(i)
                elif i and i not in three_d and i in producer and n.op_type != "Quant":
                    raise FinnFormError(f"{where}: operand {i!r} is computed, not a constant")
        elif n.op_type == "Flatten":
            if (_attr(n, "axis").i if _attr(n, "axis") else 1) != 1:
                raise FinnFormError(f"{where}: only Flatten(axis=1) keeps the element order")
        elif n.op_type == "Concat":
            a = _attr(n, "axis")
            if a.i in (2, -1):
                a.i = 3 if a.i == 2 else -1
            elif a.i == -2:
                a.i = -3
            elif a.i != 1:
                raise FinnFormError(f"{where}: concatenation axis {a.i}")
        elif n.op_type == "GlobalAveragePool":
            pass
        else:
            raise FinnFormError(f"{where}: a {n.op_type} of a 1-D tensor has no unit-height "
                                "2-D form here")
    for name in three_d:
        _set_shape(vis[name], _unit(_shape(vis[name])))
    return model


def _explicit_same_pads(n, ap, width: int, where: str) -> None:
    """auto_pad SAME_UPPER/LOWER as explicit 1-D pads (FINN reads `pads` only): the output
    has ceil(W / stride) positions; the odd pad goes after (UPPER) or before (LOWER)."""
    from onnx import helper

    k = _attr(n, "kernel_shape").ints[-1]
    s = _attr(n, "strides").ints[-1] if _attr(n, "strides") else 1
    d = _attr(n, "dilations").ints[-1] if _attr(n, "dilations") else 1
    total = max(0, (-(-width // s) - 1) * s + (k - 1) * d + 1 - width)
    lo = total // 2 if ap.s == b"SAME_UPPER" else total - total // 2
    n.attribute.remove(ap)
    old = _attr(n, "pads")
    if old is not None:
        n.attribute.remove(old)
    n.attribute.append(helper.make_attribute("pads", [lo, total - lo]))


def _unit_shape_array(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[:-1] + (1,) + a.shape[-1:])


def vector_quant_params(model):
    """Quantizers of Conv biases get shape-(1,) scale and zero point (in place)."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    users: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
    for n in g.node:
        if n.op_type != "Conv" or len(n.input) < 3 or not n.input[2]:
            continue
        q = producer.get(n.input[2])
        if q is None or q.op_type not in ("Quant", "IntQuant"):
            continue
        for k in (1, 2):  # scale, zero point (the bit width stays a scalar: FINN reads int(b))
            name = q.input[k]
            if name not in inits:
                continue
            a = numpy_helper.to_array(inits[name])
            if a.ndim:
                continue
            new = name if users.get(name, 0) == 1 else f"{name}__{q.name}"
            t = numpy_helper.from_array(a.reshape(1), new)
            if new == name:
                inits[name].CopyFrom(t)
                for vi in list(g.value_info):  # a stale 0-d shape would contradict it
                    if vi.name == name:
                        g.value_info.remove(vi)
            else:  # shared with other nodes: give this quantizer its own copy
                g.initializer.append(t)
                q.input[k] = new
    return model


def avgpool_as_depthwise(model):
    """Each 2-D AveragePool (no padding) or GlobalAveragePool of a quantizer's output becomes
    Quant(unit weights, scale 1/N, 2-bit narrow) -> Conv(group = channels) (in place)."""
    from onnx import StringStringEntryProto, helper, numpy_helper

    g = model.graph
    vis = {v.name: v for v in list(g.input) + list(g.value_info) + list(g.output)}
    producer = {o: n for n in g.node for o in n.output}
    qdomain = next((n.domain for n in g.node if n.op_type == "Quant"), "qonnx.custom_op.general")
    for n in list(g.node):
        if n.op_type not in ("AveragePool", "GlobalAveragePool"):
            continue
        where = f"node {n.name!r} ({n.op_type})"
        shape = _shape(vis[n.input[0]]) if n.input[0] in vis else []
        if len(shape) != 4:
            raise FinnFormError(f"{where}: needs a 4-D (N, C, H, W) input, got {shape}")
        src = producer.get(n.input[0])
        if src is None or src.op_type not in ("Quant", "IntQuant", "MaxPool"):
            raise FinnFormError(f"{where}: its input is not a quantizer's codes")
        C, H, W = shape[1:]
        if n.op_type == "GlobalAveragePool":
            kh, kw, strides = H, W, [H, W]
        else:
            kh, kw = _attr(n, "kernel_shape").ints
            strides = list(_attr(n, "strides").ints) if _attr(n, "strides") else [1, 1]
            pads = _attr(n, "pads")
            if (pads is not None and any(pads.ints)) or _attr(n, "auto_pad") is not None \
                    and _attr(n, "auto_pad").s not in (b"NOTSET", b"VALID"):
                raise FinnFormError(f"{where}: a padded average pool")
        win = kh * kw
        if win & (win - 1):
            raise FinnFormError(f"{where}: a window of {win} positions (not a power of two: "
                                "1/N is not exact in float32)")
        base = n.name + "_dw"
        scale = np.float32(1.0 / win)
        g.initializer.extend([
            numpy_helper.from_array(np.full((C, 1, kh, kw), scale, np.float32), base + "_w"),
            numpy_helper.from_array(np.array(scale, np.float32), base + "_ws"),
            numpy_helper.from_array(np.array(0.0, np.float32), base + "_wz"),
            numpy_helper.from_array(np.array(2.0, np.float32), base + "_wb")])
        q = helper.make_node("Quant", [base + "_w", base + "_ws", base + "_wz", base + "_wb"],
                             [base + "_wq"], name=base + "_quant", domain=qdomain, signed=1,
                             narrow=1, rounding_mode="ROUND")
        c = helper.make_node("Conv", [n.input[0], base + "_wq"], list(n.output), name=base,
                             group=C, kernel_shape=[kh, kw], strides=strides, pads=[0, 0, 0, 0],
                             dilations=[1, 1])
        from amchw.lower.qonnx import module_path

        path = module_path(n) or "avgpool"
        c.metadata_props.append(StringStringEntryProto(key="amchw.module", value=path))
        i = list(g.node).index(n)
        g.node.remove(n)
        g.node.insert(i, c)
        g.node.insert(i, q)
        w_vi = helper.make_tensor_value_info(base + "_wq", 1, [C, 1, kh, kw])
        g.value_info.append(w_vi)
    return model


def pools_per_branch(model):
    """Each MaxPool read by several nodes becomes one MaxPool per reader (in place); copy k
    (readers sorted by module path, then name) records the module path `<pool path>.r<k>`."""
    import copy

    from onnx import StringStringEntryProto

    from amchw.lower.qonnx import module_path

    g = model.graph
    readers: dict = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    vis = {v.name: v for v in g.value_info}
    for n in list(g.node):
        rs = readers.get(n.output[0], [])
        if n.op_type != "MaxPool" or len(rs) < 2:
            continue
        if any(o.name == n.output[0] for o in g.output):
            raise FinnFormError(f"node {n.name!r} (MaxPool): a graph output read by branches")
        path = module_path(n) or "pool"
        rs = sorted(rs, key=lambda r: (module_path(r) or "", r.name))
        at = list(g.node).index(n)
        for k, r in enumerate(rs):
            c = copy.deepcopy(n)
            c.name, c.output[0] = f"{n.name}_r{k}", f"{n.output[0]}_r{k}"
            del c.metadata_props[:]
            c.metadata_props.append(StringStringEntryProto(key="amchw.module",
                                                           value=f"{path}.r{k}"))
            for j, i in enumerate(r.input):
                if i == n.output[0]:
                    r.input[j] = c.output[0]
            g.node.insert(at + 1 + k, c)
            if n.output[0] in vis:
                v = copy.deepcopy(vis[n.output[0]])
                v.name = c.output[0]
                g.value_info.append(v)
        g.node.remove(n)
    return model
