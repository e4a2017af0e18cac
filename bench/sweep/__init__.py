"""The sweep: job definition, execution (local workers, Slurm), per-job records and the consolidated results table."""
