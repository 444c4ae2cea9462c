"""Inference engines: PyTorch, or the same network exported to ONNX and run by ONNX Runtime
(fp32, or int8 after static quantization).

A model's ``predict`` keeps its own pre- and post-processing and its one tiled path
(:func:`abbe.predict.predict_tiled`); only the call of the network on a window changes. The ONNX
file is made once per network and cached under the user cache directory, named by a hash of the
architecture and the weights, and written atomically, so concurrent processes (Dask workers) at
worst both write the same file.

int8 uses ONNX Runtime's static quantization (Jacob et al., CVPR 2018, "Quantization and training
of neural networks for efficient integer-arithmetic-only inference"): QDQ format, weights int8 per
output channel (symmetric), activations uint8 with ranges calibrated (min–max) on the model's own
simulated sample (:func:`abbe.models.export.bioimage_package.sample_input`: filaments for a
denoiser, nuclei for a segmenter), normalized as ``predict`` normalizes. The calibration does not
depend on the image being predicted, so one quantized file serves every input (calibrating on
the denoise benchmark's own images instead changed its PSNR by < 0.05 dB). The last convolution
and what follows it stay fp32.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from abbe.errors import InputError

Engine = Literal["torch", "onnx", "onnx-int8"]
ENGINES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
#: Images of the model's sample used to calibrate int8 activation ranges, and their seeds.
CALIBRATION_SEEDS: tuple[int, ...] = (0, 1, 2, 3)
#: Bumped when the export or quantization recipe changes, so old cache files are not reused.
RECIPE = 2

Runner = Callable[[np.ndarray], np.ndarray]
_SESSIONS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES` (and, for the onnx engines, ONNX Runtime is
    installed), else a one-line :class:`InputError`, before any work is done."""
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if engine != "torch":
        _require_onnxruntime()
    return engine


def cache_dir() -> Path:
    """Where exported and quantized networks are kept: ``$ABBE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/abbe``, else ``~/.cache/abbe``; then ``onnx/``."""
    root = os.environ.get("ABBE_CACHE_DIR")
    if root:
        return Path(root) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "abbe" / "onnx"


def network_hash(model: Any) -> str:
    """SHA-256 (first 16 hex digits) of the network's class, architecture and weights."""
    h = hashlib.sha256()
    net = model.network
    h.update(type(net).__name__.encode())
    cfg = model.network_config
    dumped = cfg.model_dump(mode="json") if hasattr(cfg, "model_dump") else repr(cfg)
    h.update(json.dumps(dumped, sort_keys=True).encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ModuleNotFoundError:
        raise InputError(
            "--engine onnx needs ONNX Runtime, which is not installed: pip install 'abbe[onnx]' "
            "(or use --engine torch)"
        ) from None
    return onnxruntime


def onnx_file(model: Any, engine: Engine) -> Path:
    """The cached ONNX file of ``model``'s network for ``engine`` (``onnx`` or ``onnx-int8``),
    exported (and quantized) now when it is not there yet."""
    ort = _require_onnxruntime()
    key = network_hash(model)
    folder = cache_dir()
    fp32 = folder / f"{key}-r{RECIPE}.onnx"
    if not fp32.exists():
        from abbe.models.export.onnx_export import export_onnx

        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(model, fp32)
    if engine == "onnx":
        return fp32
    # The quantizer's output depends on its version: a new ONNX Runtime quantizes afresh.
    int8 = folder / f"{key}-r{RECIPE}-int8-ort{ort.__version__}.onnx"
    if not int8.exists():
        quantize_int8(fp32, int8, calibration_batches(model))
    return int8


def calibration_batches(model: Any) -> list[np.ndarray]:
    """Network inputs ``(1, C, *spatial)`` for int8 calibration: the model's simulated sample
    (seeds :data:`CALIBRATION_SEEDS`), scaled as its ``predict`` scales an image (by its
    percentiles, or by a fixed input gain)."""
    from abbe.data.normalize import percentile_range
    from abbe.models.export.bioimage_package import sample_input

    info = model.export_info()
    batches = []
    for seed in CALIBRATION_SEEDS:
        raw = sample_input(model, info, seed=seed)
        if info.percentiles is not None:
            lo, hi = percentile_range(raw, *info.percentiles)
            x = (raw - lo) / max(hi - lo, 1e-6)
        else:
            x = raw * (info.input_gain or 1.0)
        batches.append(np.ascontiguousarray(x, dtype=np.float32))
    return batches


def quantize_int8(source: Path, target: Path, batches: list[np.ndarray]) -> Path:
    """Static int8 quantization of the ONNX network ``source`` into ``target`` (atomically):
    QDQ, per-channel symmetric int8 weights, uint8 activations calibrated by min–max on
    ``batches``; the output side (:func:`output_side_nodes`) stays fp32."""
    from onnxruntime import quantization as q

    from abbe.io.atomic import atomic_path
    from abbe.models.export.onnx_export import INPUT_NAME

    class _Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {INPUT_NAME: x}

    with atomic_path(target, overwrite=True) as tmp:
        # Shape inference and graph clean-up first, as ONNX Runtime's quantizer asks.
        prepared = tmp.with_name(tmp.stem + "-prepared.onnx")
        try:
            q.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            _quantize(q, prepared, tmp, reader=_Reader())
        finally:
            prepared.unlink(missing_ok=True)
    return target


def output_side_nodes(path: Path) -> list[str]:
    """Names of the network's last convolution and every node after it (the head, a residual
    add, a slice): these stay fp32. Rounding the output itself to 256 levels cost 0.11 dB of
    the 0.24 dB int8 loss on the denoise benchmark, and the head is a small share of the work."""
    import onnx

    nodes = list(onnx.load(str(path), load_external_data=False).graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type in ("Conv", "ConvTranspose")]
    if not convs:
        return []
    return [n.name for n in nodes[convs[-1] :] if n.name]


def _quantize(q: Any, source: Path, target: Path, *, reader: Any) -> None:
    q.quantize_static(
        str(source),
        str(target),
        reader,
        quant_format=q.QuantFormat.QDQ,
        per_channel=True,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
        calibrate_method=q.CalibrationMethod.MinMax,
        nodes_to_exclude=output_side_nodes(source),
    )


def session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session of ``path`` on ``threads`` threads (kept for reuse)."""
    ort = _require_onnxruntime()
    key = (str(path), int(threads))
    with _LOCK:
        if key not in _SESSIONS:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Idle threads sleep instead of spinning: other work on the same cores (Dask
            # workers, a second job) keeps its share of the CPU.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            _SESSIONS[key] = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        return _SESSIONS[key]


def onnx_runner(model: Any, engine: Engine, *, threads: int | None = None) -> Runner:
    """A function running ``model``'s network with ONNX Runtime: ``(B, C, *spatial)`` float32
    in, the network's raw output (as the torch network gives it) out.

    ``threads``: ONNX Runtime's intra-op threads (default: torch's thread count, so
    ``--threads`` means the same for both engines).
    """
    import torch

    from abbe.models.export.onnx_export import INPUT_NAME

    check_engine(engine)
    if engine == "torch":
        raise InputError("onnx_runner runs the onnx engines; torch runs the network itself")
    n = int(threads or torch.get_num_threads())
    sess = session(onnx_file(model, engine), n)

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run


def check_device(engine: str, device: str | None) -> None:
    """The onnx engines run on the CPU: a GPU asked for explicitly is a one-line error."""
    if engine != "torch" and (device or "auto").lower() not in ("auto", "cpu"):
        raise InputError(
            f"--engine {engine} runs on the CPU; use --device cpu (or auto), or --engine torch "
            f"for --device {device}"
        )
