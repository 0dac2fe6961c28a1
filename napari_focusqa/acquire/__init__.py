"""FocusQA inside pymmcore-plus MDA sequences (see ``docs/acquire.md``).

- :mod:`.engine`: ``FocusQAEngine`` (MDAEngine subclass: FocusQA autofocus for the
  sequence's autofocus plan, per-position z correction, guarded moves, faults);
- :mod:`.qc`: ``LiveQC`` (frameReady -> off-thread assessment -> incremental table);
- :mod:`.session`: ``build_sequence``, ``check_calibration``, ``run_acquisition``;
- :mod:`.sim`: drifting / tilted sample on the simulated microscope;
- :mod:`.cli`: ``focusqa acquire``.
"""
