"""What the target machine has: detected with NVML and /proc, or described with --hardware."""
