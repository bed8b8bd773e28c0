"""postclassd's training toolkit: PyTorch modules that mirror the Swift engine, data loading, and
bundle export. Tensor names match the engine's (and the published checkpoints'), so a state dict
saved from these modules is a bundle file the engine loads."""
