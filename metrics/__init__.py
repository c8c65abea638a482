"""Built-in metrics, one per module, and their bases (base.py, quantus_bridge.py).

``registry.load_builtins`` imports every module, which registers what it defines.
"""
