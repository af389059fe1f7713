"""Plain, frozen data shared by every layer: no I/O, no clock, no framework types."""
