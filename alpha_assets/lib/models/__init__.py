"""Model layer maths: walk-forward splits with purge/embargo, the four alpha learners, IC metrics, the
IC-weighted ensemble and the champion/challenger rule. Pure: no Dagster, heavy frameworks imported lazily."""
