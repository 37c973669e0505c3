"""The control step written plainly, for ``roach bench``: PyTorch eager, numpy, onnxruntime.

Each reference does the published algorithm with no rewrite: the adaptation step (one
SGD step on the window, each parameter by its own step where the file has per-parameter
scales, forward + backward + the loss after the step), then random
shooting over N x H candidates whose every step (step 0 included) runs the whole batch
through the network with the normalisation applied per step, scored by the same task
cost as the controller. Same weights, same window, same batch sizes as the step under
test. Only ``roach bench`` imports this module; torch is imported inside ``torch_step``
(the ``train``/``dev`` extra), never by onboard/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from onboard import kernels
from onboard.model import LoadedModel

CostFn = Callable[[np.ndarray], np.ndarray]
StepFn = Callable[[], object]


def _window_xy(
    model: LoadedModel, states: np.ndarray, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised inputs [M, 24] and delta targets [M, 24] (float32) of a window."""
    x = np.concatenate([states[:-1, 2:], actions], axis=1)
    xn = (x - model.input_mean) / model.input_std
    tn = (states[1:] - states[:-1] - model.delta_mean) / model.delta_std
    return xn.astype(np.float32), tn.astype(np.float32)


def step_sizes(
    model: LoadedModel, inner_lr: float | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer step sizes (float32, shaped as the weights and biases): ``inner_lr``
    (default the file's) times the file's per-parameter scales (``roach train
    --learn-step``), or times 1."""
    lr = np.float32(model.meta.inner_lr if inner_lr is None else inner_lr)
    if model.step_scale is None:
        return [np.full(w.shape, lr) for w in model.weights], [
            np.full(b.shape, lr) for b in model.biases
        ]
    sw, sb = kernels.param_views(model.step_scale, model.dims)
    return [lr * w for w in sw], [lr * b for b in sb]


def _forward(ws: list[np.ndarray], bs: list[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output of the ReLU network, the input first."""
    hs = [x]
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = hs[-1] @ w.T + b
        hs.append(np.maximum(h, 0) if i < len(ws) - 1 else h)
    return hs


def numpy_adapt(
    model: LoadedModel,
    xn: np.ndarray,
    tn: np.ndarray,
    lr_w: list[np.ndarray],
    lr_b: list[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One SGD step from the meta-learned weights on the MSE of the window (backprop by
    hand); returns the adapted weights and biases."""
    ws = [w.copy() for w in model.weights]
    bs = [b.copy() for b in model.biases]
    hs = _forward(ws, bs, xn)
    g = 2.0 * (hs[-1] - tn) / tn.size
    for i in range(len(ws) - 1, -1, -1):
        gw, gb = g.T @ hs[i], g.sum(axis=0)
        if i > 0:
            g = (g @ ws[i]) * (hs[i] > 0)
        ws[i] -= lr_w[i] * gw
        bs[i] -= lr_b[i] * gb
    return ws, bs


def numpy_step(
    model: LoadedModel,
    states: np.ndarray,
    actions: np.ndarray,
    state: np.ndarray,
    n: int,
    horizon: int,
    low: float,
    high: float,
    cost: CostFn,
) -> StepFn:
    """The whole step (adapt + plan) in plain numpy, as a researcher would write it."""
    xn, tn = _window_xy(model, states, actions)
    lr_w, lr_b = step_sizes(model)
    rng = np.random.default_rng(0)
    s0 = state.astype(np.float32)

    def step() -> object:
        ws, bs = numpy_adapt(model, xn, tn, lr_w, lr_b)
        float(np.mean((_forward(ws, bs, xn)[-1] - tn) ** 2))  # the guard's loss after
        cand = rng.uniform(low, high, (n, horizon, 2)).astype(np.float32)
        traj = np.empty((n, horizon + 1, 24), np.float32)
        traj[:, 0] = s0
        for k in range(horizon):
            x = np.concatenate([traj[:, k, 2:], cand[:, k]], axis=1)
            dn = _forward(ws, bs, (x - model.input_mean) / model.input_std)[-1]
            traj[:, k + 1] = traj[:, k] + dn * model.delta_std + model.delta_mean
        return cand[int(np.argmin(cost(traj)))]

    return step


def torch_step(
    model: LoadedModel,
    states: np.ndarray,
    actions: np.ndarray,
    state: np.ndarray,
    n: int,
    horizon: int,
    low: float,
    high: float,
    cost: CostFn,
    threads: int,
) -> StepFn:
    """The whole step in PyTorch eager (autograd for the adaptation step), float32."""
    import torch

    torch.set_num_threads(threads)
    xn_np, tn_np = _window_xy(model, states, actions)
    xn, tn = torch.from_numpy(xn_np), torch.from_numpy(tn_np)
    in_mean, in_std = torch.tensor(model.input_mean), torch.tensor(model.input_std)
    d_mean, d_std = torch.tensor(model.delta_mean), torch.tensor(model.delta_std)
    meta_w = [torch.from_numpy(np.array(w)) for w in model.weights]
    meta_b = [torch.from_numpy(np.array(b)) for b in model.biases]
    s0 = torch.from_numpy(state.astype(np.float32))
    gen = torch.Generator().manual_seed(0)
    lr_w, lr_b = ([torch.from_numpy(a) for a in part] for part in step_sizes(model))

    def forward(ws: list[torch.Tensor], bs: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            x = torch.nn.functional.linear(x, w, b)
            if i < len(ws) - 1:
                x = torch.relu(x)
        return x

    def step() -> object:
        ws = [w.clone().requires_grad_(True) for w in meta_w]
        bs = [b.clone().requires_grad_(True) for b in meta_b]
        loss = torch.mean((forward(ws, bs, xn) - tn) ** 2)
        grads = torch.autograd.grad(loss, [*ws, *bs])
        with torch.no_grad():
            k = len(ws)
            ws2 = [w - s * g for w, s, g in zip(ws, lr_w, grads[:k], strict=True)]
            bs2 = [b - s * g for b, s, g in zip(bs, lr_b, grads[k:], strict=True)]
            float(torch.mean((forward(ws2, bs2, xn) - tn) ** 2))
            cand = torch.rand((n, horizon, 2), generator=gen) * (high - low) + low
            traj = [s0.expand(n, 24)]
            for k in range(horizon):
                x = torch.cat([traj[-1][:, 2:], cand[:, k]], dim=1)
                dn = forward(ws2, bs2, (x - in_mean) / in_std)
                traj.append(traj[-1] + dn * d_std + d_mean)
            costs = cost(torch.stack(traj, dim=1).numpy())
        return cand[int(np.argmin(costs))]

    return step


def _session(proto: bytes, threads: int) -> Any:
    """An onnxruntime CPU session on ``threads`` intra-op threads (one inter-op)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(proto, opts, providers=["CPUExecutionProvider"])


def onnxruntime_plan(
    model: LoadedModel, state: np.ndarray, n: int, horizon: int, threads: int
) -> StepFn:
    """The planner's N x H forward passes through onnxruntime (the model's own graph,
    normalisation included), with the state update between steps; no cost."""
    from robot_contract.model_file import build_model_proto

    norm = {
        "input_mean": model.input_mean,
        "input_std": model.input_std,
        "delta_mean": model.delta_mean,
        "delta_std": model.delta_std,
    }
    proto = build_model_proto(list(model.weights), list(model.biases), norm, {})
    sess = _session(proto.SerializeToString(), threads)
    rng = np.random.default_rng(0)
    cand = rng.uniform(2.0, 9.0, (n, horizon, 2)).astype(np.float32)
    traj = np.empty((n, horizon + 1, 24), np.float32)
    x = np.empty((n, 24), np.float32)

    def plan() -> object:
        traj[:, 0] = state
        for k in range(horizon):
            x[:, :22] = traj[:, k, 2:]
            x[:, 22:] = cand[:, k]
            (delta,) = sess.run(["delta"], {"x": x})
            np.add(traj[:, k], delta, out=traj[:, k + 1])
        return traj

    return plan


def onnxruntime_fed_plan(
    model: LoadedModel, state: np.ndarray, n: int, horizon: int, threads: int
) -> StepFn:
    """The planner's N x H forward passes through onnxruntime with the weights fed as
    graph inputs, as the controller would have to run it (its weights change every
    tick, so they cannot be constants that onnxruntime pre-packs at load): one graph for
    the whole horizon (Slice, Concat, Gemm + Relu per layer, Add per step), the
    normalisation folded into the first and last layer (onboard/rollout.py), states
    written into a preallocated [N, (H+1) x 24] buffer through an I/O binding; no cost."""
    from onnx import TensorProto, helper

    from onboard.rollout import fold_normalisation

    folded = fold_normalisation(model, model.theta)
    n_layers = len(folded)
    inputs = [
        helper.make_tensor_value_info("s0", TensorProto.FLOAT, [n, 24]),
        helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, 2 * horizon]),
    ]
    feeds: dict[str, np.ndarray] = {}
    for i, w in enumerate(folded):
        inputs.append(helper.make_tensor_value_info(f"w{i}", TensorProto.FLOAT, list(w[:-1].shape)))
        inputs.append(helper.make_tensor_value_info(f"b{i}", TensorProto.FLOAT, [w.shape[1]]))
        feeds[f"w{i}"], feeds[f"b{i}"] = w[:-1], w[-1]

    def const(name: str, v: int) -> TensorProto:
        return helper.make_tensor(name, TensorProto.INT64, [1], [v])

    inits = [const("two", 2), const("end", 24), const("axis", 1)]
    nodes = []
    s = "s0"
    states = [s]
    for k in range(horizon):
        inits += [const(f"a{k}_lo", 2 * k), const(f"a{k}_hi", 2 * k + 2)]
        nodes += [
            helper.make_node("Slice", [s, "two", "end", "axis"], [f"s{k}_in"]),
            helper.make_node("Slice", ["a", f"a{k}_lo", f"a{k}_hi", "axis"], [f"a{k}"]),
            helper.make_node("Concat", [f"s{k}_in", f"a{k}"], [f"x{k}"], axis=1),
        ]
        h = f"x{k}"
        for i in range(n_layers):
            nodes.append(helper.make_node("Gemm", [h, f"w{i}", f"b{i}"], [f"x{k}_l{i}"]))
            h = f"x{k}_l{i}"
            if i < n_layers - 1:
                nodes.append(helper.make_node("Relu", [h], [f"x{k}_r{i}"]))
                h = f"x{k}_r{i}"
        nodes.append(helper.make_node("Add", [s, h], [f"s{k + 1}"]))
        s = f"s{k + 1}"
        states.append(s)
    nodes.append(helper.make_node("Concat", states, ["states"], axis=1))
    out_info = helper.make_tensor_value_info("states", TensorProto.FLOAT, [n, 24 * (horizon + 1)])
    graph = helper.make_graph(nodes, "rollout", inputs, [out_info], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    sess = _session(proto.SerializeToString(), threads)
    rng = np.random.default_rng(0)
    feeds["s0"] = np.ascontiguousarray(np.broadcast_to(np.asarray(state, np.float32), (n, 24)))
    feeds["a"] = rng.uniform(2.0, 9.0, (n, 2 * horizon)).astype(np.float32)
    traj = np.empty((n, horizon + 1, 24), np.float32)
    binding = sess.io_binding()
    for name, v in feeds.items():
        binding.bind_cpu_input(name, v)
    binding.bind_output("states", "cpu", 0, np.float32, [n, 24 * (horizon + 1)], traj.ctypes.data)

    def plan() -> object:
        sess.run_with_iobinding(binding)
        return traj

    return plan
