"""Reading images (TIFF/OME/ImageJ/PNG) and writing results (JSON/CSV)."""

from napari_focusqa.io.reader import ImageData, read_image
from napari_focusqa.io.writer import write_csv, write_json

__all__ = ["ImageData", "read_image", "write_csv", "write_json"]
