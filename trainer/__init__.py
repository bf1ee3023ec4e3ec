"""Training of the SRM (weak process labels) and SRM+ (MCTS-derived rewards) checkpoints."""
