"""fastsiren: fused kernels and a task layer for SIREN (sine-activation MLPs)."""

# reference: the fallback of every backend (inside torch.func transforms, under torch.export),
# imported now, as under torch.compile a backend comes from sys.modules (dynamo cannot import)
from fastsiren import functional, reference  # noqa: F401
from fastsiren.backends import available_backends, backend_names
from fastsiren.jet import Jet
from fastsiren.layers import (
    PosEncMLP,
    ReluMLP,
    SineLayer,
    Siren,
    TanhMLP,
    build_model,
    convert_official_state_dict,
    count_params,
    matched_baseline,
)

__version__ = "0.1.0"

__all__ = [
    "Jet",
    "PosEncMLP",
    "ReluMLP",
    "SineLayer",
    "Siren",
    "TanhMLP",
    "available_backends",
    "backend_names",
    "build_model",
    "convert_official_state_dict",
    "count_params",
    "functional",
    "matched_baseline",
]
