"""Fitted nets in model files: their weights, history and flags out, and the net rebuilt in.

A fitted :class:`~sklearn_blend.training.net.ObjectiveNet` is stored as the weights of its
model and of its objective (less a frozen teacher's, stored with the teacher estimator), which
of them are frozen, the model's mode, ``history`` and the early-stopping flags. It is rebuilt
the way skorch recommends: the estimator re-creates the net it trained (``_net_builder``, the
builder ``fit`` uses), :func:`~sklearn_blend.training.core.initialized_net` initializes it, and
the weights are loaded into it.
"""

from __future__ import annotations

import dataclasses


def net_types():
    """``(NeuralNet, ObjectiveNet)``: any skorch net, and the package's."""
    from skorch import NeuralNet

    from ..training.net import ObjectiveNet

    return NeuralNet, ObjectiveNet


def torch_to_numpy(tensor):
    """``(array, special dtype or None)`` of a tensor, on the CPU."""
    import torch

    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy(), "bfloat16"
    return tensor.numpy(), None


def encode_net(encoder, net, where):
    """The JSON node of a fitted net; its weights go to ``encoder``'s tensors."""
    from ..training.net import ObjectiveNet

    seen = encoder._seen(net)
    if seen is not None:
        return seen
    if not isinstance(net, ObjectiveNet) or not getattr(net, "initialized_", False):
        encoder._refuse(where, net, "only initialized nets of the package's training core "
                                 "(ObjectiveNet) are stored")
    node_id = encoder._new_id(net)
    prefix = f"net{node_id}."
    parts = {"module": net.module_.state_dict(),
             "criterion": {key: value for key, value in net.criterion_.state_dict().items()
                           if not key.startswith("teacher.")}}
    node = {"t": "net", "id": node_id, "description": str(net.description),
            "monitor": str(net.monitor)}
    special = {}
    for part, state in parts.items():
        for key, tensor in state.items():
            array, dtype = torch_to_numpy(tensor)
            name = encoder._tensor(f"{prefix}{part}.{key}", array)
            if dtype:
                special[name] = dtype
        node[part] = list(state)
    node["torch_dtypes"] = special
    # which weights are frozen (a teacher's, fixed sessions') and the mode: part of the
    # fitted state, and CPU kernels differ in the last bits with them (GRUs)
    node["frozen"] = {part: [name for name, parameter in own_parameters(net, part)
                             if not parameter.requires_grad] for part in parts}
    node["training"] = bool(net.module_.training)
    teacher = getattr(net.criterion_, "teacher", None)
    width = getattr(teacher, "latent_width", None)
    node["objective"] = {"teacher": teacher is not None,
                         "teacher_width": None if width is None else int(width)}
    node["history"] = encoder.encode(list(net.history_), f"{where}.history")
    node["flags"] = {flag: bool(getattr(net, flag, False))
                     for flag in ("interrupted_", "stopped_early_")}
    return node


def own_parameters(net, part):
    """``(name, parameter)`` of the net's model (``part="module"``) or of its objective, less
    the frozen teacher's (stored with the teacher)."""
    if part == "module":
        return list(net.module_.named_parameters())
    return [(name, parameter) for name, parameter in net.criterion_.named_parameters()
            if not name.startswith("teacher.")]


def _check_shapes(decoder, build, node, what):
    """Refuse a file whose weights are not those of the net its parameters describe, before
    the net is built: the model is built on PyTorch's ``meta`` device (shapes, no memory) and
    every weight's shape compared with the tensor the file holds under its name."""
    import torch

    from .. import seeding

    try:
        with seeding.GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]), torch.device("meta"):
            model, objective = build()
    except Exception:  # noqa: BLE001 - a builder that cannot run on meta: the real build checks
        return
    expected = {"module": model.state_dict(),
                "criterion": {key: value for key, value in objective.state_dict().items()
                              if not key.startswith("teacher.")}}
    for part, state in expected.items():
        if type(node.get(part)) is not list or sorted(node[part]) != sorted(state):
            decoder._fail(f"the weights of {what} in the file are not those of the net its "
                          "parameters describe")
        for key, value in state.items():
            stored = decoder._array_of(f"net{node['id']}.{part}.{key}")
            if tuple(stored.shape) != tuple(value.shape):
                decoder._fail(f"{what}'s weight {key!r} has shape {tuple(stored.shape)} in the "
                              f"file, but the parameters describe {tuple(value.shape)}")


def decode_net(decoder, owner, attribute, node):
    """The net of ``owner.<attribute>`` rebuilt from its node: the estimator's own builder
    (``owner._net_builder``), an initialized net, then the saved weights, history and flags."""
    import torch
    from skorch.history import History

    from ..training import core

    if not hasattr(owner, "_net_builder"):
        decoder._fail(f"{type(owner).__name__} has no net to rebuild")
    decoder._remember(node, None)
    device = getattr(owner, "device_", None) or "cpu"
    what = f"{type(owner).__name__}.{attribute}"
    try:
        build = owner._net_builder(attribute, dict(node["objective"]))
        _check_shapes(decoder, build, node, what)
        # files written before the reconstruction term was named "recon" monitor "mtm"
        monitor = {"mtm": "recon"}.get(node["monitor"], node["monitor"])
        config = dataclasses.replace(core.training_config(owner, device), monitor=monitor)
        net = core.initialized_net(build, config, node["description"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"could not rebuild the net {what} of the model file: "
                         f"{error}") from error
    special = node.get("torch_dtypes", {})

    def state(part):
        tensors = {}
        for key in node[part]:
            name = f"net{node['id']}.{part}.{key}"
            tensor = torch.from_numpy(decoder._array_of(name).copy())
            if special.get(name) == "bfloat16":
                tensor = tensor.view(torch.bfloat16)
            tensors[key] = tensor
        return tensors

    try:
        missing, unexpected = net.module_.load_state_dict(state("module"), strict=False)
        if missing or unexpected:
            raise RuntimeError(f"missing weights {missing}, unexpected {unexpected}")
        own = [key for key in net.criterion_.state_dict() if not key.startswith("teacher.")]
        if sorted(own) != sorted(node["criterion"]):
            raise RuntimeError(f"the objective has weights {own}, the file "
                               f"{node['criterion']}")
        net.criterion_.load_state_dict(state("criterion"), strict=False)
    except RuntimeError as error:
        raise ValueError(
            f"the weights of {what} in the file do not fit the net the estimator builds "
            f"from its parameters ({' '.join(str(error).split())[:500]}); was it saved "
            "after set_params changed its architecture without a refit?") from error
    frozen = node.get("frozen", {})
    for part in ("module", "criterion"):
        for name, parameter in own_parameters(net, part):
            parameter.requires_grad_(name not in frozen.get(part, ()))
    net.module_.train(bool(node.get("training", False)))
    net.history_ = History(decoder.decode(node["history"]))
    for flag, value in node.get("flags", {}).items():
        if flag in ("interrupted_", "stopped_early_"):
            setattr(net, flag, bool(value))
    decoder.memo[node["id"]] = net
    return net
