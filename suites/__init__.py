"""The suites that ship with lfxbench (YAML files: data, not code); `lfxbench list suites`."""
