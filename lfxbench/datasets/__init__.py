"""The dataset catalogue, one loader per module; base.py holds the splits and file finding.

``registry.load_builtins`` imports every module, which registers what it defines.
"""
