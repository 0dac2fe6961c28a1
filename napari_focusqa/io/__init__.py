"""Reading images (TIFF/OME/ImageJ/PNG; CZI/ND2/LIF/OME-Zarr via bioio) and writing results."""

from napari_focusqa.io.reader import ImageData, read_image, read_series
from napari_focusqa.io.writer import write_csv, write_json

__all__ = ["ImageData", "read_image", "read_series", "write_csv", "write_json"]
