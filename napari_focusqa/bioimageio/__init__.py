"""bioimage.io model packages: export FocusQA models, and run packages as ``--model``.

:func:`~napari_focusqa.bioimageio.export.export_model` writes a package (the spec's
``bioimageio.yaml`` with ONNX weights, test tensors, cover, documentation, citations);
:func:`~napari_focusqa.bioimageio.loader.load_package` turns a package (folder, yaml or
zip) into a :class:`~napari_focusqa.core.model.FocusModel`. Both need the
``[bioimageio]`` extra (bioimageio.core + onnx).
"""
