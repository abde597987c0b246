#!/bin/bash
# Submits the plan's waves as Slurm job arrays, each wave after the previous one succeeded.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p logs
job=$(sbatch --parsable wave-0.sbatch)
echo "wave 0: job ${job%%;*}"
job=$(sbatch --parsable --dependency=afterok:"${job%%;*}" wave-1.sbatch)
echo "wave 1: job ${job%%;*}"
job=$(sbatch --parsable --dependency=afterok:"${job%%;*}" wave-2.sbatch)
echo "wave 2: job ${job%%;*}"
job=$(sbatch --parsable --dependency=afterok:"${job%%;*}" wave-3.sbatch)
echo "wave 3: job ${job%%;*}"
job=$(sbatch --parsable --dependency=afterok:"${job%%;*}" wave-4.sbatch)
echo "wave 4: job ${job%%;*}"
job=$(sbatch --parsable --dependency=afterok:"${job%%;*}" wave-5.sbatch)
echo "wave 5: job ${job%%;*}"
job=$(sbatch --parsable --dependency=afterok:"${job%%;*}" wave-6.sbatch)
echo "wave 6: job ${job%%;*}"
job=$(sbatch --parsable --dependency=afterok:"${job%%;*}" wave-7.sbatch)
echo "wave 7: job ${job%%;*}"
