"""The codec of model files: an object tree to JSON nodes plus tensors, and back.

:class:`Encoder` turns a fitted estimator (its parameters and fitted attributes, recursively)
into JSON-able nodes and a dict of NumPy arrays; :class:`Decoder` rebuilds the tree, creating
only classes of the allow-list (:mod:`~sklearn_blend.persistence.registry`) and data of the
kinds the encoder writes. Nets are stored by :mod:`~sklearn_blend.persistence.nets`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path, PurePath

import numpy as np

from . import registry
from .files import contiguous
from .nets import decode_net, encode_net, net_types, torch_to_numpy

#: private attributes of scikit-learn estimators that hold code-backed objects (compiled loss
#: functions), rebuilt on load by calling the named method of the estimator, as ``fit`` does
REBUILT_ATTRIBUTES = {"_base_loss": "_get_loss"}
#: the largest item of a string or bytes array (or dtype) a file may hold, in bytes
MAX_ITEM_BYTES = 1 << 20
#: the string and bytes arrays of one file decode to at most this many bytes plus
#: :data:`TEXT_EXPANSION` times the length of its JSON: what its text can justify
MAX_TEXT_BYTES = 64 << 20
TEXT_EXPANSION = 16
#: parameters that name a cache folder (of pickles), and what loading resets them to
CACHE_FOLDERS = {"teacher_cache": True, "memory": None}
#: builtin types that may appear as parameter values (say ``dtype=float``)
BUILTIN_TYPES = {"bool": bool, "int": int, "float": float, "complex": complex, "str": str,
                 "bytes": bytes, "object": object}


def _registered_name(entries, obj, attribute=None):
    """The name under which ``obj`` (or its entry's ``attribute``) is in ``entries``."""
    for name, entry in entries.items():
        if (entry if attribute is None else getattr(entry, attribute)) is obj:
            return name
    return None


def _numeric(dtype):
    """Whether arrays of ``dtype`` are stored as safetensors tensors of that dtype."""
    return dtype.kind == "b" or (dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8)) or (
        dtype.kind == "f" and dtype.itemsize in (2, 4, 8))


class Encoder:
    """Turns an object tree into JSON-able nodes plus a dict of NumPy arrays (the tensors)."""

    def __init__(self):
        self.tensors = {}
        self.memo = {}  # id(object) -> (node id, object); keeps each object alive

    # -- helpers
    def _new_id(self, obj):
        node_id = len(self.memo)
        self.memo[id(obj)] = (node_id, obj)
        return node_id

    def _seen(self, obj):
        entry = self.memo.get(id(obj))
        return None if entry is None else {"t": "ref", "id": entry[0]}

    def _tensor(self, name, array):
        array = contiguous(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        self.tensors[name] = array
        return name

    def _refuse(self, where, value, why=None):
        raise ValueError(
            f"cannot store {where} = {short(value)}: "
            + (why or f"objects of type {type(value).__module__}.{type(value).__qualname__} "
                      "are not on the allow-list of the safe model format")
            + ". Save this model with joblib.dump or pickle instead, and load such files only "
              "from sources you trust (see sklearn_blend.persistence)."
        )

    # -- the dispatcher
    def encode(self, value, where):
        import torch

        if value is None or type(value) in (bool, str, int):
            return value
        if type(value) is float:
            if math.isfinite(value):
                return value
            return {"t": "float", "v": "nan" if math.isnan(value) else
                    ("inf" if value > 0 else "-inf")}
        if isinstance(value, np.generic):
            return self._scalar(value, where)
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, torch.Tensor):
            return self._torch(value, where)
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {"t": "tuple", "v": [self.encode(v, f"{where}[{i}]")
                                        for i, v in enumerate(value)]}
        if type(value) is dict:
            return self._dict(value, where)
        if type(value) in (set, frozenset):
            return {"t": type(value).__name__,
                    "v": [self.encode(v, f"{where} item") for v in value]}
        if type(value) is complex:
            return {"t": "complex", "v": [self.encode(value.real, where),
                                          self.encode(value.imag, where)]}
        if type(value) is bytes:
            return {"t": "bytes", "v": value.hex()}
        if isinstance(value, np.dtype):
            if value.fields is not None or value.subdtype is not None:
                self._refuse(where, value, "structured NumPy dtypes are not supported")
            return {"t": "dtype", "v": value.str}
        if isinstance(value, type) and issubclass(value, np.generic):
            return {"t": "nptype", "v": np.dtype(value).str}
        if isinstance(value, type) and value in BUILTIN_TYPES.values():
            return {"t": "type", "v": value.__name__}
        if type(value) is np.random.RandomState:
            return {"t": "RandomState",
                    "v": self.encode(value.get_state(legacy=True), f"{where} state")}
        if isinstance(value, PurePath):
            return {"t": "path", "v": os.fspath(value)}
        return self._object(value, where)

    def _scalar(self, value, where):
        dtype = value.dtype
        if dtype.kind not in "biufUS" or (dtype.kind == "f" and dtype.itemsize > 8):
            self._refuse(where, value, f"NumPy scalars of dtype {dtype} are not supported")
        return {"t": "npscalar", "dtype": dtype.str, "v": self.encode(value.item(), where)}

    def _array(self, value, where):
        seen = self._seen(value)
        if seen is not None:
            return seen
        if type(value) not in (np.ndarray, np.memmap):
            self._refuse(where, value, f"array subclasses ({type(value).__name__}) are not "
                                       "supported")
        node_id = self._new_id(value)
        dtype = value.dtype
        node = {"t": "ndarray", "id": node_id, "dtype": dtype.str,
                "shape": list(value.shape)}
        if value.ndim > 1 and value.flags.f_contiguous and not value.flags.c_contiguous:
            node["order"] = "F"
        if _numeric(dtype):
            node["tensor"] = self._tensor(f"array{node_id}", value)
        elif dtype.kind in "fcmM" and dtype.fields is None and dtype.itemsize <= 16:
            # numbers safetensors has no dtype for: their bytes, as uint8
            values = contiguous(value)
            node["tensor"] = self._tensor(f"array{node_id}", values.reshape(-1).view(np.uint8))
            node["bytes"] = True
        elif dtype.kind in "USO":
            node["items"] = [self.encode(v, f"{where}[...]") for v in value.ravel().tolist()]
        else:
            self._refuse(where, value, f"NumPy arrays of dtype {dtype} are not supported")
        return node

    def _torch(self, value, where):
        seen = self._seen(value)
        if seen is not None:
            return seen
        node_id = self._new_id(value)
        array, special = torch_to_numpy(value)
        node = {"t": "torch", "id": node_id, "tensor": self._tensor(f"tensor{node_id}", array),
                "requires_grad": bool(value.requires_grad)}
        if special:
            node["torch_dtype"] = special
        return node

    def _dict(self, value, where):
        if all(type(k) is str for k in value):
            return {"t": "dict", "s": {k: self.encode(v, f"{where}[{k!r}]")
                                       for k, v in value.items()}}
        keys, values = [], []
        for k, v in value.items():
            keys.append(self.encode(k, f"{where} key {k!r}"))
            values.append(self.encode(v, f"{where}[{k!r}]"))
        return {"t": "dict", "k": keys, "v": values}

    def _object(self, value, where):
        from sklearn.base import BaseEstimator
        from sklearn.utils._metadata_requests import MetadataRequest

        from ..distill import STRATEGIES, Strategy
        from ..models.base import BASES

        net_types_ = net_types()
        if isinstance(value, net_types_[0]):
            seen = self._seen(value)
            if seen is not None:
                return seen
            self._refuse(where, value, "a skorch net is stored only as a fitted attribute of "
                                       "the sklearn_blend estimator that trained it")
        if isinstance(value, BaseEstimator):
            return self._estimator(value, where)
        if type(value).__module__.startswith("joblib") and type(value).__name__ == "Memory":
            self._refuse(where, value, "a joblib.Memory is not stored; give the cache as its "
                                       "folder (a str) before saving")
        if type(value) is MetadataRequest:
            return self._metadata_request(value, where)
        if isinstance(value, Strategy):
            return self._strategy(value, where)
        if isinstance(value, type) and issubclass(value, Strategy):
            builtin = registry.stored_name("strategy", value)
            if builtin is not None:  # a built-in class, whatever its name maps to now
                return {"t": "registered_strategy", "cls": builtin}
            name = _registered_name(STRATEGIES, value)
            if name is not None:
                return {"t": "registered_strategy", "name": name}
            self._refuse(where, value, "a Strategy class is code; the safe format stores "
                                       "strategies by their registered name. Register it "
                                       "(sklearn_blend.register_strategy(name, cls)) and pass "
                                       "the name, also in the process that loads the file")
        if callable(value):
            name = _registered_name(BASES, value, "builder")
            if name is not None:
                return {"t": "registered_base", "name": name}
            self._refuse(where, value, "a function or class (a user's own base, strategy or "
                                       "callable) is code, which the safe format never stores; "
                                       "register a base with sklearn_blend.models.register_base "
                                       "(a strategy with sklearn_blend.register_strategy) and "
                                       "pass its name, also in the process that loads the file")
        name = registry.stored_name("dataclass", type(value))
        if name is not None:
            fields = {field.name: self.encode(getattr(value, field.name),
                                              f"{where}.{field.name}")
                      for field in dataclasses.fields(value) if field.init}
            return {"t": "dataclass", "cls": name, "fields": {"t": "dict", "s": fields}}
        name = registry.stored_name("object", type(value))
        if name is not None:
            seen = self._seen(value)
            if seen is not None:
                return seen
            node_id = self._new_id(value)
            return {"t": "object", "id": node_id, "cls": name,
                    "state": self._dict(dict(vars(value)), where)}
        self._refuse(where, value)

    def _strategy(self, value, where):
        import inspect

        from ..distill import STRATEGIES

        cls = type(value)
        registered = _registered_name(STRATEGIES, cls)
        builtin = registry.stored_name("strategy", cls)
        if registered is None and builtin is None:
            self._refuse(where, value, f"strategy class {cls.__qualname__} is not registered by "
                                       "name; register it (sklearn_blend.register_strategy) in "
                                       "the processes that save and load the file")
        params = {}
        for name, parameter in inspect.signature(cls).parameters.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or not (
                    hasattr(value, name)):
                self._refuse(where, value, f"{cls.__qualname__} keeps no attribute {name!r} "
                                           "for its constructor argument, so it cannot be "
                                           "rebuilt from data")
            params[name] = self.encode(getattr(value, name), f"{where}.{name}")
        node = {"t": "strategy", "params": {"t": "dict", "s": params}}
        if builtin is not None:
            node["cls"] = builtin
        else:
            node["registered"] = registered
        return node

    def _metadata_request(self, value, where):
        requests = {}
        for method, request in vars(value).items():
            if method != "owner" and getattr(request, "_requests", None):
                requests[method] = self.encode(dict(request._requests), f"{where}.{method}")
        return {"t": "metadata_request", "owner": self.encode(value.owner, f"{where}.owner"),
                "requests": requests}

    def _estimator(self, value, where):
        seen = self._seen(value)
        if seen is not None:
            return seen
        cls = type(value)
        name = registry.stored_name("estimator", cls)
        package = name is not None
        if not package:
            name = registry.sklearn_names().get(cls)
            if name is None:
                from sklearn.model_selection._search import BaseSearchCV

                why = (f"estimator class {cls.__module__}.{cls.__qualname__} is not on the "
                       "allow-list (the package's estimators and their subclasses, and "
                       "scikit-learn's public estimators)")
                if isinstance(value, BaseSearchCV):  # off the list: its cv and grid are code
                    why = ("a fitted search is not stored by the safe format; save its "
                           "best_estimator_ (the model its predict uses), and keep "
                           "cv_results_ as a table")
                self._refuse(where, value, why)
        node_id = self._new_id(value)
        net_class = net_types()[0]
        state = {}
        for attribute, item in vars(value).items():
            path = f"{where}.{attribute}"
            if isinstance(item, net_class):
                if not package or not hasattr(value, "_net_builder"):
                    self._refuse(path, item, "a skorch net is stored only as a fitted attribute "
                                             "of the sklearn_blend estimator that trained it")
                state[attribute] = encode_net(self, item, path)
            elif (not package and attribute in REBUILT_ATTRIBUTES
                  and hasattr(value, REBUILT_ATTRIBUTES[attribute])):
                rebuilt = getattr(value, REBUILT_ATTRIBUTES[attribute])()
                if type(rebuilt) is not type(item):
                    self._refuse(path, item, "it differs from what the estimator rebuilds")
                state[attribute] = {"t": "rebuilt"}
            else:
                state[attribute] = self.encode(item, path)
        return {"t": "estimator", "id": node_id, "cls": name, "state": state}


def short(value):
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken repr must not hide the real error
        text = object.__repr__(value)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------- decoding
class Decoder:
    """Rebuilds the object tree of the JSON nodes, the tensors and the allow-list."""

    def __init__(self, tensors, device, text_budget=MAX_TEXT_BYTES, version=None):
        self.tensors = tensors
        self.device = device
        self.memo = {}
        self.warned_device = False
        self.text_budget = text_budget  # bytes left for string and bytes arrays
        self.reset_caches = []  # (estimator, parameter, folder, new value) of reset caches
        self.version = version  # the file's format version (None: the current one)

    def _fail(self, message):
        raise ValueError(f"invalid model file: {message}.")

    def _remember(self, node, obj):
        node_id = node.get("id")
        if not isinstance(node_id, int) or node_id in self.memo:
            self._fail("an object has a missing or repeated id")
        self.memo[node_id] = obj
        return obj

    def _array_of(self, name):
        if not isinstance(name, str) or name not in self.tensors:
            self._fail(f"tensor {name!r} is missing")
        return self.tensors[name]

    def decode(self, node):
        if node is None or type(node) in (bool, str, int, float):
            return node
        if type(node) is list:
            return [self.decode(v) for v in node]
        if type(node) is not dict or not isinstance(node.get("t"), str):
            self._fail(f"unexpected JSON value {short(node)}")
        handler = self.HANDLERS.get(node["t"])
        if handler is None:
            self._fail(f"unknown kind of object {node['t']!r}")
        return handler(self, node)

    def _plain_dtype(self, text):
        """The dtype ``text`` names, if it is of a kind the encoder writes (numbers, times,
        strings and bytes of at most :data:`MAX_ITEM_BYTES` an item, objects; no structured,
        sub-array or void dtypes)."""
        if not isinstance(text, str):
            self._fail(f"bad dtype {short(text)}")
        try:
            dtype = np.dtype(text)
        except Exception:  # noqa: BLE001 - NumPy raises several types for a bad string
            self._fail(f"bad dtype {short(text)}")
        if dtype.fields is not None or dtype.subdtype is not None or (
                dtype.kind not in "biufcmMUSO"):
            self._fail(f"dtype {short(text)} is not on the allow-list")
        if dtype.kind in "US" and dtype.itemsize > MAX_ITEM_BYTES:
            self._fail(f"dtype {dtype} has items of {dtype.itemsize} bytes, more than "
                       f"{MAX_ITEM_BYTES}")
        return dtype

    # -- plain data
    def _ref(self, node):
        if node.get("id") not in self.memo:
            self._fail(f"a reference to an unknown object {node.get('id')!r}")
        return self.memo[node["id"]]

    def _float(self, node):
        values = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
        if node.get("v") not in values:
            self._fail(f"bad float {node.get('v')!r}")
        return values[node["v"]]

    def _tuple(self, node):
        return tuple(self.decode(v) for v in node["v"])

    def _set(self, node):
        return {self.decode(v) for v in node["v"]}

    def _frozenset(self, node):
        return frozenset(self.decode(v) for v in node["v"])

    def _complex(self, node):
        real, imag = (self.decode(v) for v in node["v"])
        return complex(real, imag)

    def _bytes(self, node):
        return bytes.fromhex(node["v"])

    def _dict(self, node):
        if "s" in node:
            if type(node["s"]) is not dict:
                self._fail("bad mapping")
            return {key: self.decode(value) for key, value in node["s"].items()}
        keys, values = node.get("k"), node.get("v")
        if type(keys) is not list or type(values) is not list or len(keys) != len(values):
            self._fail("bad mapping")
        return {self.decode(k): self.decode(v) for k, v in zip(keys, values)}

    def _dtype(self, node):
        return self._plain_dtype(node["v"])

    def _nptype(self, node):
        return self._plain_dtype(node["v"]).type

    def _type(self, node):
        if node.get("v") not in BUILTIN_TYPES:
            self._fail(f"type {node.get('v')!r} is not on the allow-list")
        return BUILTIN_TYPES[node["v"]]

    def _npscalar(self, node):
        dtype = self._plain_dtype(node["dtype"])
        if dtype.kind not in "biufUS":
            self._fail(f"scalar dtype {dtype} is not on the allow-list")
        return dtype.type(self.decode(node["v"]))

    def _RandomState(self, node):  # noqa: N802 - the class's name
        state = np.random.RandomState()
        state.set_state(self.decode(node["v"]))
        return state

    def _path(self, node):
        return Path(node["v"])

    def _ndarray(self, node):
        dtype, shape = self._plain_dtype(node["dtype"]), node["shape"]
        if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
            self._fail(f"bad array shape {short(shape)}")
        shape, size = tuple(shape), math.prod(shape)
        if "tensor" in node:  # as many bytes as the file holds
            stored = self._array_of(node["tensor"])
            if node.get("bytes"):  # numbers safetensors has no dtype for, as their bytes
                if dtype.kind not in "fcmM" or dtype.itemsize > 16 or stored.dtype != np.uint8 \
                        or stored.ndim != 1 or stored.size != size * dtype.itemsize:
                    self._fail(f"tensor {node['tensor']!r} is not the bytes of a {dtype} "
                               f"array of shape {shape}")
                array = stored.copy().view(dtype).reshape(shape)
            else:
                if not _numeric(dtype) or stored.dtype != dtype.newbyteorder("<"):
                    self._fail(f"tensor {node['tensor']!r} is {stored.dtype}, not {dtype}")
                array = stored.astype(dtype, copy=True)  # byte order as saved; writeable
            if array.shape != shape:
                self._fail(f"tensor {node['tensor']!r} has shape {array.shape}, not {shape}")
        elif dtype.kind in "USO":
            items = node["items"]
            if type(items) is not list or len(items) != size:
                self._fail(f"an array of shape {shape} without its {size} items")
            if dtype.kind != "O":
                self.text_budget -= size * dtype.itemsize
                if self.text_budget < 0:
                    self._fail("its string arrays are far larger than its text")
                array = np.array([self.decode(v) for v in items], dtype=dtype).reshape(shape)
            else:
                array = np.empty(size, dtype=object)
                for i, item in enumerate(items):  # one by one: lists stay objects
                    array[i] = self.decode(item)
                array = array.reshape(shape)
        else:
            self._fail(f"array dtype {dtype} is not on the allow-list")
        if node.get("order") == "F":
            array = np.asfortranarray(array)
        return self._remember(node, array)

    def _torch(self, node):
        import torch

        array = self._array_of(node["tensor"])
        special = node.get("torch_dtype")
        if special is not None and (special != "bfloat16" or array.dtype != np.int16):
            self._fail(f"tensor {node['tensor']!r} is {array.dtype}, not the bits of {special}")
        tensor = torch.from_numpy(array.copy())
        if special == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        tensor.requires_grad_(bool(node.get("requires_grad")))
        return self._remember(node, tensor)

    # -- allow-listed objects
    def _registered_strategy(self, node):
        from ..distill import STRATEGIES

        if "cls" in node:
            cls = registry.lookup("strategy", node["cls"])
            if cls is None:
                self._fail(f"strategy class {node['cls']!r} is not on the allow-list")
            return cls
        if node.get("name") not in STRATEGIES:
            raise ValueError(
                f"the model uses strategy {node.get('name')!r}, which is not registered in this "
                "process: register it with sklearn_blend.register_strategy before loading.")
        return STRATEGIES[node["name"]]

    def _registered_base(self, node):
        from ..models.base import BASES

        if node.get("name") not in BASES:
            raise ValueError(
                f"the model uses base {node.get('name')!r}, which is not registered in this "
                "process: register it with sklearn_blend.models.register_base before loading.")
        return BASES[node["name"]].builder

    def _strategy(self, node):
        if "registered" in node:
            cls = self._registered_strategy({"name": node["registered"]})
        elif registry.lookup("strategy", node.get("cls")) is not None:
            cls = registry.lookup("strategy", node["cls"])
        else:
            self._fail(f"strategy class {node.get('cls')!r} is not on the allow-list")
        return cls(**self.decode(node["params"]))

    def _dataclass(self, node):
        cls = registry.lookup("dataclass", node.get("cls"))
        if cls is None:
            self._fail(f"class {node.get('cls')!r} is not on the allow-list")
        return cls(**self.decode(node["fields"]))

    def _object(self, node):
        cls = registry.lookup("object", node.get("cls"))
        if cls is None:
            self._fail(f"class {node.get('cls')!r} is not on the allow-list")
        obj = self._remember(node, cls.__new__(cls))
        state = self.decode(node["state"])
        if type(state) is not dict:
            self._fail(f"{cls.__name__} has no state")
        for attribute in state:
            self._check_data_attribute(cls, attribute, ())
        obj.__dict__.update(state)
        return obj

    def _check_data_attribute(self, cls, attribute, parameters):
        """What a file sets on an object is data: a parameter or a fitted attribute, never a
        name of the class (a method, a property, a class-level table) it would replace."""
        if not isinstance(attribute, str) or attribute.startswith("__") or (
                attribute not in parameters and hasattr(cls, attribute)):
            self._fail(f"{cls.__name__} sets {short(attribute)}, which is neither a parameter "
                       "nor a fitted attribute of the class")

    def _metadata_request(self, node):
        from sklearn.utils._metadata_requests import MetadataRequest

        request = MetadataRequest(owner=self.decode(node["owner"]))
        for method, params in node["requests"].items():
            if not isinstance(getattr(request, method, None), type(request.fit)):
                self._fail(f"unknown metadata-routing method {method!r}")
            for param, alias in self.decode(params).items():
                getattr(request, method).add_request(param=param, alias=alias)
        return request

    def _estimator(self, node):
        name = node.get("cls")
        if not isinstance(name, str):
            self._fail("an estimator without a class")
        cls = registry.lookup("estimator", name)  # the package's estimators and subclasses
        package = cls is not None
        if not package:
            if name.startswith("sklearn_blend:"):
                self._fail(f"class {name!r} is not on the allow-list")
            cls = registry.sklearn_class(name)
        obj = self._remember(node, cls.__new__(cls))
        nets, rebuilt = [], []
        state = node.get("state")
        if type(state) is not dict:
            self._fail(f"{name} has no state")
        upgrade = getattr(cls, "_upgrade_state", None) if package else None
        if upgrade is not None and self.version is not None:
            try:  # a file of an earlier format: what the class has renamed since
                state = upgrade(dict(state), self.version)
            except (TypeError, ValueError, KeyError) as error:
                self._fail(f"{name}: {' '.join(str(error).split())[:300]}")
        parameters = set(cls._get_param_names())
        for attribute in state:
            self._check_data_attribute(cls, attribute, parameters)
        for attribute, value in state.items():
            kind = value.get("t") if type(value) is dict else None
            if kind == "net":
                nets.append((attribute, value))
                obj.__dict__[attribute] = None  # keeps the attribute order
            elif kind == "rebuilt" and attribute in REBUILT_ATTRIBUTES:
                rebuilt.append(attribute)
                obj.__dict__[attribute] = None
            else:
                obj.__dict__[attribute] = self.decode(value)
        for parameter, reset in CACHE_FOLDERS.items():
            folder = obj.__dict__.get(parameter)
            if parameter in parameters and isinstance(folder, (str, bytes, os.PathLike)):
                # a folder cache holds pickles that a later fit would load: a file must not
                # point the model at one
                obj.__dict__[parameter] = reset
                self.reset_caches.append((type(obj).__name__, parameter, folder, reset))
        if "device_" in obj.__dict__ and package:
            obj.__dict__["device_"] = self._device_for(obj.__dict__["device_"])
        if package and hasattr(obj, "_check_loaded"):
            try:  # parameters in range, sizes consistent, before any net is built
                obj._check_loaded()
            except (TypeError, ValueError) as error:
                self._fail(f"{name}: {' '.join(str(error).split())[:300]}")
        for attribute, value in nets:
            obj.__dict__[attribute] = decode_net(self, obj, attribute, value)
        for attribute in rebuilt:
            obj.__dict__[attribute] = getattr(obj, REBUILT_ATTRIBUTES[attribute])()
        return obj

    def _device_for(self, saved):
        from ..training.core import resolve_device

        if self.device is not None:
            return self.device
        try:
            return resolve_device(saved)
        except (TypeError, ValueError) as error:
            if not self.warned_device:
                self.warned_device = True
                warnings.warn(
                    f"the model was fitted on device {saved!r}, which this machine does not "
                    f"have ({error}); it is loaded on the CPU. Choose the device with "
                    "sklearn_blend.load(path, device=...).",
                    UserWarning, stacklevel=4,
                )
            return "cpu"


#: the decoder of each kind of node (the nets are decoded with their estimators)
Decoder.HANDLERS = {
    "ref": Decoder._ref, "float": Decoder._float, "tuple": Decoder._tuple,
    "set": Decoder._set, "frozenset": Decoder._frozenset, "complex": Decoder._complex,
    "bytes": Decoder._bytes, "dict": Decoder._dict, "dtype": Decoder._dtype,
    "nptype": Decoder._nptype, "type": Decoder._type, "npscalar": Decoder._npscalar,
    "RandomState": Decoder._RandomState, "path": Decoder._path,
    "ndarray": Decoder._ndarray, "torch": Decoder._torch,
    "registered_strategy": Decoder._registered_strategy,
    "registered_base": Decoder._registered_base, "strategy": Decoder._strategy,
    "dataclass": Decoder._dataclass, "object": Decoder._object,
    "metadata_request": Decoder._metadata_request, "estimator": Decoder._estimator,
}

