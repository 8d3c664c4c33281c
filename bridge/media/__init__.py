"""What carries the calls' media (RTP)."""
