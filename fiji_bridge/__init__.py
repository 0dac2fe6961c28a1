"""Fiji/ImageJ bridge for FocusQA.

* :mod:`fiji_bridge.bridge`: ImageJ session (pyimagej with a Fiji.app, else scyjava +
  ``ij.jar``), numpy <-> ``ImagePlus``, results -> ``Overlay`` / ``ResultsTable``,
  :func:`~fiji_bridge.bridge.assess_imageplus`.
* :mod:`fiji_bridge.cli`: ``focusqa fiji install | run-macro | assess-for-macro``.
* ``fiji_bridge/macros``: the "Assess Focus" and "Focus Curves" ImageJ macros.
* :mod:`fiji_bridge.roi`: read the overlay ImageJ saved in a TIFF (no Java needed).

Importing this package does not start Java; :func:`fiji_bridge.bridge.start` does.
"""
