"""Accelerator models (MAC array, memory, energy). Filled by the simulator issue; no torch here."""
