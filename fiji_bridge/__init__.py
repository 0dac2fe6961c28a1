"""Fiji/ImageJ bridge for FocusQA."""
