"""Training: the token policy, behaviour cloning, and GRPO/PAPO updates (online and offline)."""
