"""FocusQA: patchwise focus-quality assessment and autofocus for microscopy."""

from napari_focusqa.core.assess import FocusResult, assess_image, certainty
from napari_focusqa.core.model import FocusModel, ModelCardError, list_models, load_model
from napari_focusqa.core.patches import PatchGrid, make_grid
from napari_focusqa.core.zstack import ChannelCurve, StackResult, assess_stack

__version__ = "0.1.0"

__all__ = [
    "ChannelCurve",
    "FocusModel",
    "FocusResult",
    "ModelCardError",
    "PatchGrid",
    "StackResult",
    "__version__",
    "assess_image",
    "assess_stack",
    "certainty",
    "list_models",
    "load_model",
    "make_grid",
]
