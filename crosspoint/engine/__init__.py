"""Training loops, checkpoints, events and process setup (DDP, AMP) for ``crosspoint pretrain``."""
