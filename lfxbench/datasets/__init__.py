"""The dataset catalogue, one dataset family per module; base.py holds what they share.

``registry.load_builtins`` imports every module, which registers what it defines.
"""
