"""Fiji/ImageJ bridge for FocusQA.

* :mod:`fiji_bridge.bridge`: the Python API in one import (it re-exports
  :mod:`~fiji_bridge.jvm` (the ImageJ session), :mod:`~fiji_bridge.convert` (numpy <->
  ``ImagePlus``), :mod:`~fiji_bridge.overlay`, :mod:`~fiji_bridge.tables` and
  :mod:`~fiji_bridge.assess` (:func:`~fiji_bridge.assess.assess_imageplus`)).
* :mod:`fiji_bridge.cli`: ``focusqa fiji install | update-site | run-macro |
  assess-for-macro`` (work done by :mod:`~fiji_bridge.install`,
  :mod:`~fiji_bridge.runner` and :mod:`~fiji_bridge.exchange`).
* ``fiji_bridge/macros``: the "Assess Focus" and "Focus Curves" ImageJ macros.
* :mod:`fiji_bridge.roi`: read the overlay ImageJ saved in a TIFF (no Java needed).

Importing this package does not start Java; :func:`fiji_bridge.jvm.start` does.
"""

#: version of the file exchange between the macros and ``focusqa fiji assess-for-macro``;
#: the macros pass theirs, so a mismatch is a clear error, never misread files
MACRO_PROTOCOL = 2
