"""Load generators and benchmarks, with their recorded results in bench/results/."""
