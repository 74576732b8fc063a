"""Fine-tuning: parameter groups, recipes, the loop and its checkpoints."""
