"""Model factory: defocus simulation, procedural sources, training, export (extra ``[train]``).

Run ``focusqa-train <config>`` or ``python -m napari_focusqa.training <config>``; configs live
in ``napari_focusqa/training/configs``.
"""
