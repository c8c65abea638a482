"""The model zoo, one family per module; base.py holds ZooModel.

``registry.load_builtins`` imports every module, which registers what it defines.
"""
