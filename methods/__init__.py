"""Built-in explanation methods, one per module, and their bases (base.py, labelfree.py).

``registry.load_builtins`` imports every module, which registers what it defines.
"""
